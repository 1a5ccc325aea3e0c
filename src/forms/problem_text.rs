//! What each definition-check code means, in zh / pt / en: the sentence an author reads first,
//! in their language, before the checker's specific detail (field names, pointers and values,
//! which stay as the checker wrote them). Every code a definition check can report has one;
//! `tests/it/definition_checks.rs` fails when one is missing.

use crate::i18n::LocalizedText;

/// The localized sentence of a definition-check code, or `None` for a code that is not one.
pub fn explain(code: &str) -> Option<LocalizedText> {
    let (zh, pt, en) = match code {
        "CARIMBO-E0001" => (
            "無法讀取檔案或資料夾，或檔案大於 2 MiB。",
            "Um ficheiro ou pasta não pôde ser lido, ou o ficheiro tem mais de 2 MiB.",
            "A file or folder could not be read, or the file is larger than 2 MiB.",
        ),
        "CARIMBO-E0002" => (
            "檔案不是有效的 JSON（或嵌套超過 128 層）。",
            "O ficheiro não é JSON válido (ou tem mais de 128 níveis).",
            "The file is not valid JSON (or nested more than 128 levels).",
        ),
        "CARIMBO-E0003" => ("檔案是 JSON，但不是物件。", "O ficheiro é JSON mas não é um objeto.", "The file is JSON but not an object."),
        "CARIMBO-E0004" => ("缺少 kind，或 kind 未知。", "Falta kind, ou kind é desconhecido.", "kind is missing or unknown."),
        "CARIMBO-E0005" => (
            "所給路徑下找不到任何 JSON 定義檔。",
            "Não há ficheiros JSON de definição nos caminhos indicados.",
            "No JSON definition files were found under the paths given.",
        ),
        "CARIMBO-E0010" => ("有 carimbo 不認識的鍵。", "Há uma chave que o carimbo não conhece.", "There is a key carimbo does not know."),
        "CARIMBO-E0011" => {
            ("缺少某個鍵，或其值的類型不對。", "Falta uma chave, ou o seu valor tem o tipo errado.", "A key is missing or its value has the wrong type.")
        }
        "CARIMBO-E0012" => (
            "某段文字缺少中文、葡文或英文，或欄位、選項沒有標籤。",
            "Falta um texto em chinês, português ou inglês, ou um campo ou opção não tem rótulo.",
            "A text is missing in zh, pt or en, or a field or option has no label.",
        ),
        "CARIMBO-E0013" => (
            "識別碼格式不對，或與檔名不符。",
            "Um identificador está mal formado ou não corresponde ao nome do ficheiro.",
            "An id is malformed or does not match the file name.",
        ),
        "CARIMBO-E0014" => (
            "兩個定義（或規則、計算值）使用同一識別碼。",
            "Duas definições (ou regras, ou valores calculados) têm o mesmo identificador.",
            "Two definitions (or rules, or computed values) share an id.",
        ),
        "CARIMBO-E0020" => {
            ("結構描述不是有效的 JSON Schema 2020-12。", "O esquema não é JSON Schema 2020-12 válido.", "The schema is not valid JSON Schema 2020-12.")
        }
        "CARIMBO-E0021" => (
            "$ref 指向定義以外之處，或設定了 $id。",
            "Um $ref aponta para fora da definição, ou $id está definido.",
            "A $ref points outside the definition, or $id is set.",
        ),
        "CARIMBO-E0022" => ("無法編譯結構描述。", "O esquema não pôde ser compilado.", "The schema could not be compiled."),
        "CARIMBO-E0030" => (
            "規則使用了未知的運算子，或無法編譯。",
            "Uma regra usa um operador desconhecido ou não pôde ser compilada.",
            "A rule uses an unknown operator or cannot be compiled.",
        ),
        "CARIMBO-E0031" => (
            "規則或計算值讀取不存在的欄位或設定。",
            "Uma regra ou valor calculado lê um campo ou definição que não existe.",
            "A rule or computed value reads a field or setting that does not exist.",
        ),
        "CARIMBO-E0032" => ("規則以常數 0 作除數。", "Uma regra divide pela constante 0.", "A rule divides by the constant 0."),
        "CARIMBO-E0033" => (
            "流程條件讀取了表格的受限欄位。",
            "Uma condição do fluxo lê um campo restrito do formulário.",
            "A workflow condition reads a restricted field of its form.",
        ),
        "CARIMBO-E0034" => (
            "利益衝突的當事人欄位不是表格的欄位。",
            "Um campo de parte em conflito de interesses não é campo do formulário.",
            "A conflict-of-interest party field is not a field of the form.",
        ),
        "CARIMBO-E0035" => (
            "當事人欄位是一組欄位，而非人員編號。",
            "Um campo de parte é um grupo de campos, não a identificação de uma pessoa.",
            "A party field names a group of fields, not a person id.",
        ),
        "CARIMBO-E0036" => (
            "當事人是對象本人的欄位，或重複列出。",
            "Uma parte é o campo do próprio interessado, ou está repetida.",
            "A party is the subject's field, or is listed twice.",
        ),
        "CARIMBO-E0037" => ("on_conflict 只可為 skip 或 reassign。", "on_conflict só pode ser skip ou reassign.", "on_conflict must be skip or reassign."),
        "CARIMBO-E0038" => {
            ("當事人欄位是（或位於）受限欄位。", "Um campo de parte é (ou está dentro de) um campo restrito.", "A party field is (inside) a restricted field.")
        }
        "CARIMBO-E0040" => (
            "計算值格式不對，或其欄位未宣告為唯讀。",
            "Um valor calculado está mal formado, ou o seu campo não é readOnly.",
            "A computed value is malformed, or its field is not declared readOnly.",
        ),
        "CARIMBO-E0041" => (
            "計算值引用了未知的日曆、表或欄。",
            "Um valor calculado refere um calendário, tabela ou coluna desconhecidos.",
            "A computed value names an unknown calendar, table or column.",
        ),
        "CARIMBO-E0042" => (
            "結構描述的欄位使用 \"format\": \"time\"；請改用 carimbo 的時間格式。",
            "Um campo do esquema usa \"format\": \"time\"; use o formato de hora do carimbo.",
            "A schema field says \"format\": \"time\"; use carimbo's time-of-day format.",
        ),
        "CARIMBO-E0043" => ("算術運算得到文字或真假值。", "A aritmética recebe texto ou verdadeiro/falso.", "Arithmetic is given text or true/false."),
        "CARIMBO-E0044" => (
            "規則的指標指向固定的一行、行內的行，或 * 位置不對。",
            "O ponteiro de uma regra indica uma linha fixa, linhas dentro de linhas, ou um * mal colocado.",
            "A rule's pointer names one fixed row, rows inside rows, or a misplaced *.",
        ),
        "CARIMBO-E0045" => (
            "規則讀取 carimbo 不提供的 context 值，或 layout.applicant 列出未知資料。",
            "Uma regra lê um valor de context que o carimbo não fornece, ou layout.applicant indica um dado desconhecido.",
            "A rule reads a context value carimbo does not supply, or layout.applicant names an unknown fact.",
        ),
        "CARIMBO-E0046" => (
            "行或輸入元件的版面不相符。",
            "A disposição das linhas ou de um elemento de entrada não condiz com o esquema.",
            "The layout of rows or a widget does not fit the schema.",
        ),
        "CARIMBO-E0047" => (
            "時間或進位運算子得到它不能接受的常數或欄位。",
            "Um operador de hora ou de arredondamento recebe uma constante ou campo que não aceita.",
            "A time or rounding operator is given a constant or field it cannot take.",
        ),
        "CARIMBO-E0050" => (
            "表格所指的流程不在所給定義之中。",
            "O formulário indica um fluxo que não está entre as definições dadas.",
            "A form names a workflow that is not among the definitions given.",
        ),
        "CARIMBO-E0060" => (
            "有效的範例被拒絕，或計出不同的值。",
            "Um exemplo válido foi recusado, ou calculou outro valor.",
            "A valid example was refused, or computed a different value.",
        ),
        "CARIMBO-E0061" => ("無效的範例被接受。", "Um exemplo inválido foi aceite.", "An invalid example was accepted."),
        "CARIMBO-E0062" => (
            "無效的範例沒有產生它預期的錯誤。",
            "Um exemplo inválido não produziu o erro que espera.",
            "An invalid example did not produce an error it expects.",
        ),
        "CARIMBO-E0063" => {
            ("有效範例少於 2 個，或無效範例少於 3 個。", "Há menos de 2 exemplos válidos ou de 3 inválidos.", "Fewer than 2 valid or 3 invalid examples.")
        }
        "CARIMBO-E0070" => (
            "版面問題：欄位不屬任何組或屬兩組，或有未知的欄位、角色或元件。",
            "Problema de disposição: um campo em nenhum grupo ou em dois, ou um campo, papel ou elemento desconhecido.",
            "Layout problem: a field in no group or in two, or an unknown field, role or widget.",
        ),
        "CARIMBO-E0080" => ("日曆或費率表格式不對。", "Um calendário ou tabela de taxas está mal formado.", "A calendar or rates table is malformed."),
        "CARIMBO-E0081" => (
            "提醒（不是錯誤）：沒有 subject 的流程把步驟交給申請人。",
            "Aviso, não recusa: um passo é atribuído ao requerente num fluxo sem subject.",
            "A warning, not a refusal: a step is assigned to the applicant in a workflow without subject.",
        ),
        "CARIMBO-E0082" => (
            "流程條件讀取表格沒有的 settings 設定。",
            "Uma condição do fluxo lê uma definição settings que o formulário não tem.",
            "A workflow condition reads a setting the form does not have.",
        ),
        "CARIMBO-E0083" => (
            "期限同時有或同時沒有 days 與 working_days，或以工作日計算卻沒有假期日曆。",
            "Um prazo tem ambos ou nenhum de days e working_days, ou conta dias úteis sem calendário de feriados.",
            "A deadline has both or neither of days and working_days, or counts working days with no holiday calendar.",
        ),
        "CARIMBO-E0084" => (
            "找不到人員名冊，無法檢查流程。",
            "Não foi encontrado o registo de pessoal para verificar os fluxos.",
            "No staff directory was found to check the workflows against.",
        ),
        "CARIMBO-E0120" => (
            "JSON 內同一物件的成員名稱重複，請每個名稱只寫一次。",
            "Um objeto JSON repete o nome de um membro; escreva cada nome uma só vez.",
            "A JSON object repeats a member name; write each name only once.",
        ),
        "CARIMBO-E0709" => (
            "此版本號已用於其他內容，請用新的版本號。",
            "Este número de versão já foi usado para outro conteúdo; use um novo.",
            "This version number was used for other content; use a new one.",
        ),
        "CARIMBO-E0710" => {
            ("新版本號必須高於已發佈的版本。", "A nova versão tem de ser superior à publicada.", "A new version must be higher than the published one.")
        }
        "CARIMBO-E1301" => {
            ("摘要欄位不是表格的頂層欄位。", "Um campo do resumo não é campo de topo do formulário.", "A summary field is not a top-level field of the form.")
        }
        "CARIMBO-E1302" => ("摘要不可列出受限欄位。", "O resumo não pode indicar um campo restrito.", "The summary may not name a restricted field."),
        "CARIMBO-E1303" => (
            "摘要須列出 2 至 6 個不重複的單值欄位。",
            "O resumo deve indicar 2 a 6 campos de valor único, sem repetição.",
            "The summary must name 2 to 6 distinct single-valued fields.",
        ),
        _ => return None,
    };
    Some(LocalizedText::new(zh, pt, en))
}
