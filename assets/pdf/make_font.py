#!/usr/bin/env python3
"""Make the font subset the printable record embeds (assets/pdf/NotoSansCJKtc-Regular-subset.otf).

Source: Noto Sans CJK TC Regular (SIL Open Font License 1.1), from Debian's `fonts-noto-cjk`
(/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc, face 3). Kept: ASCII, Latin-1 and
Latin Extended-A (Portuguese and romanised names), general and CJK punctuation, full-width
forms, the 5,401 frequently used hanzi of Big5 level 1 (常用字), and every other character that
the forms, workflows, seeds and Rust sources of this checkout use. Run from the repository root:

    apt-get install fonts-noto-cjk && pip install fonttools && python3 assets/pdf/make_font.py

`carimbo pdf` refuses a document with a character outside the subset (CARIMBO-E1402) rather
than draw a box; add the character's source file here and run the script again.
"""
import pathlib
from fontTools import subset
from fontTools.ttLib import TTCollection

SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FACE = 3  # Noto Sans CJK TC
OUT = pathlib.Path("assets/pdf/NotoSansCJKtc-Regular-subset.otf")


def big5_level1():
    chars = set()
    for lead in range(0xA4, 0xC7):
        for trail in list(range(0x40, 0x7F)) + list(range(0xA1, 0xFF)):
            try:
                ch = bytes([lead, trail]).decode("big5")
            except UnicodeDecodeError:
                continue
            if lead == 0xC6 and trail > 0x7E:
                continue
            chars.add(ch)
    return chars


def used_in_checkout():
    chars = set()
    for folder, pattern in [("forms", "*.json"), ("workflows", "*.json"), ("seeds", "*.json"), ("src", "*.rs")]:
        for path in pathlib.Path(folder).rglob(pattern):
            chars.update(path.read_text(encoding="utf-8"))
    return chars


def main():
    wanted = set(chr(c) for c in range(0x20, 0x7F))
    wanted |= set(chr(c) for c in range(0xA0, 0x180))  # Latin-1, Latin Extended-A
    wanted |= set(chr(c) for c in range(0x2000, 0x2070))  # general punctuation
    wanted |= set(chr(c) for c in range(0x3000, 0x3040))  # CJK symbols and punctuation
    wanted |= set(chr(c) for c in range(0xFF00, 0xFFF0))  # full-width forms
    wanted |= set("←→↑↓✓✗•…€£¥℃№")
    wanted |= big5_level1()
    wanted |= used_in_checkout()
    font = TTCollection(SOURCE).fonts[FACE]
    cmap = font.getBestCmap()
    keep = sorted(ord(c) for c in wanted if ord(c) in cmap)
    options = subset.Options()
    options.layout_features = []  # no shaping: carimbo places glyphs one per character
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = False
    sub = subset.Subsetter(options)
    sub.populate(unicodes=keep)
    sub.subset(font)
    font.save(OUT)
    print(f"{OUT}: {len(keep)} characters, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
