// Signs carimbo signing payloads in the browser with WebCrypto (JAdES baseline-B: a JWS in
// flattened JSON serialization with a detached payload). The private key is read from a file the
// person selects and never leaves the page; only the signature is sent.
"use strict";

const carimbo = (() => {
  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const utf8 = (s) => new TextEncoder().encode(s);
  const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

  // The script's own words, in the page's language (`<html lang>`), for what it says when a page
  // passed none: every word a person reads comes in zh / pt / en.
  const WORDS = {
    zh: {
      nokey: "請先選擇你的私鑰檔案。",
      notkey: "此檔案不是私鑰（PEM 格式的 PRIVATE KEY）。",
      unsupported: "不支援此私鑰：請使用 P-256、Ed25519 或 RSA 的 PKCS#8 私鑰。",
      nocert: "找不到你的證書，未能核對私鑰。",
      network: "未能連接伺服器，請檢查網絡後再試。",
    },
    pt: {
      nokey: "Escolha primeiro o ficheiro da sua chave.",
      notkey: "Este ficheiro não é uma chave privada (PRIVATE KEY em PEM).",
      unsupported: "Chave não suportada: use uma chave PKCS#8 P-256, Ed25519 ou RSA.",
      nocert: "O seu certificado não foi encontrado; a chave não pôde ser verificada.",
      network: "Sem ligação ao servidor; verifique a rede e tente de novo.",
    },
    en: {
      nokey: "Choose your key file first.",
      notkey: "This file is not a private key (a PRIVATE KEY PEM file).",
      unsupported: "Unsupported key: use a P-256, Ed25519 or RSA PKCS#8 key.",
      nocert: "Your certificate was not found, so the key could not be checked.",
      network: "The server could not be reached; check the network and try again.",
    },
  };
  function own(name) {
    const lang = (document.documentElement.lang || "en").slice(0, 2);
    return (WORDS[lang] || WORDS.en)[name] || WORDS.en[name] || "";
  }

  function pemBody(pem, label) {
    const m = pem.match(new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`));
    if (!m) throw new Error(own("notkey"));
    return fromB64(m[1].replace(/\s+/g, ""));
  }

  function contains(haystack, needle) {
    outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
      for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  }

  // The key's algorithm from the OID inside its PKCS#8 AlgorithmIdentifier.
  const OID_EC = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
  const OID_P256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
  const OID_ED25519 = [0x2b, 0x65, 0x70];
  const OID_RSA = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

  async function importKey(pemText) {
    const der = pemBody(pemText, "PRIVATE KEY");
    const head = der.slice(0, 32);
    if (contains(head, OID_EC) && contains(der.slice(0, 40), OID_P256)) {
      const key = await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
      return { key, alg: "ES256", params: { name: "ECDSA", hash: "SHA-256" } };
    }
    if (contains(head, OID_ED25519)) {
      const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
      return { key, alg: "EdDSA", params: { name: "Ed25519" } };
    }
    if (contains(head, OID_RSA)) {
      const key = await crypto.subtle.importKey("pkcs8", der, { name: "RSA-PSS", hash: "SHA-256" }, false, ["sign"]);
      return { key, alg: "PS256", params: { name: "RSA-PSS", saltLength: 32 } };
    }
    throw new Error(own("unsupported"));
  }

  // Signs the canonical payload text; `x5c` is the signer's chain (base64 DER, leaf first).
  async function sign(signer, canonical, x5c) {
    const leaf = fromB64(x5c[0]);
    const header = { alg: signer.alg, iat: Math.floor(Date.now() / 1000), x5c, "x5t#S256": b64url(await crypto.subtle.digest("SHA-256", leaf)) };
    const protectedB64 = b64url(utf8(JSON.stringify(header)));
    const input = utf8(`${protectedB64}.${b64url(utf8(canonical))}`);
    const sig = await crypto.subtle.sign(signer.params, signer.key, input);
    return { protected: protectedB64, signature: b64url(sig) };
  }

  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }

  async function api(path, body) {
    let res;
    try {
      res = await fetch(path, {
        method: body === undefined ? "GET" : "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new Error(own("network")); // the browser's own "Failed to fetch" is English everywhere
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = { detail: text }; }
    return { ok: res.ok, status: res.status, json };
  }

  async function readFile(input) {
    const f = input.files && input.files[0];
    if (!f) throw new Error(own("nokey"));
    return await f.text();
  }

  // The signer's key from the chosen file, checked before anything is signed: a certificate,
  // a file that is no key, or a key that does not match the signer's own certificate is refused
  // with the page's words (`#key-picker` carries them in the reader's language). Returns the
  // signer and the chain for `x5c`.
  async function signerFor(input) {
    const box = document.getElementById("key-picker");
    const words = (name) => (box && box.dataset["msg" + name[0].toUpperCase() + name.slice(1)]) || own(name);
    const expected = (box && box.dataset.expected) || "";
    const f = input && input.files && input.files[0];
    if (!f) throw new Error(words("nokey"));
    const text = await f.text();
    if (/-----BEGIN CERTIFICATE-----/.test(text)) throw new Error(words("certificate") + expected);
    if (!/-----BEGIN PRIVATE KEY-----/.test(text)) throw new Error(words("notkey") + expected);
    let signer;
    try {
      signer = await importKey(text);
    } catch (_) {
      throw new Error(words("unsupported"));
    }
    const cert = await api("/api/v1/me/certificate");
    if (!cert.ok || !cert.json || !cert.json.x5c) throw new Error(words("nocert"));
    if (cert.json.spki && !(await matches(signer, fromB64(cert.json.spki)))) throw new Error(words("notyours") + expected);
    return { signer, x5c: cert.json.x5c };
  }

  // Whether the private key belongs to the certificate: a random challenge signed with it must
  // verify under the certificate's public key.
  async function matches(signer, spki) {
    const verifyAlg = signer.alg === "ES256" ? { name: "ECDSA", namedCurve: "P-256" } : signer.alg === "EdDSA" ? { name: "Ed25519" } : { name: "RSA-PSS", hash: "SHA-256" };
    let pub;
    try {
      pub = await crypto.subtle.importKey("spki", spki, verifyAlg, false, ["verify"]);
    } catch (_) {
      return false; // the certificate's key is of another kind than the file's
    }
    const challenge = crypto.getRandomValues(new Uint8Array(32));
    const sig = await crypto.subtle.sign(signer.params, signer.key, challenge);
    return await crypto.subtle.verify(signer.params, pub, sig, challenge);
  }

  return { importKey, sign, api, readFile, csrf, signerFor, own };
})();
