//! The detail of a definition problem, typed: which kind of thing is wrong and with what names,
//! rendered in zh (Traditional Chinese as used in Macau), pt (European Portuguese) and en here
//! and nowhere else.
//!
//! A check builds a `Detail` with the field names, widget names, pointers and values it found;
//! `render` turns it into a sentence in the reader's language (the names stay as the author
//! wrote them). The English rendering is the stable `Problem::message` that `carimbo check`, the
//! API and the tests have always shown. A text that comes from a library (a JSON parser's or
//! JSON Schema's own wording, an operating-system error) is carried as an argument: carimbo
//! cannot translate it, but the sentence around it is in the reader's language.
//! `tests/it/definition_checks.rs` walks every kind (`DetailKind`) and checks its three texts.

use crate::i18n::{Lang, LocalizedText};
use serde_json::Value;
use std::fmt;

/// Renders one of three format strings (zh, pt, en) with the same arguments.
macro_rules! tr {
    ($lang:expr, $zh:literal, $pt:literal, $en:literal $(, $arg:expr)* $(,)?) => {
        match $lang {
            Lang::Zh => format!($zh $(, $arg)*),
            Lang::Pt => format!($pt $(, $arg)*),
            Lang::En => format!($en $(, $arg)*),
        }
    };
}

/// The JSON type a value has, named in the reader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    pub fn of(v: &Value) -> Self {
        match v {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    /// With its article, as it reads in a sentence ("an object", "um objeto").
    pub fn name(self, lang: Lang) -> &'static str {
        use JsonType::*;
        match (self, lang) {
            (Null, _) => "null",
            (Boolean, Lang::Zh) => "真假值",
            (Boolean, Lang::Pt) => "um booleano",
            (Boolean, Lang::En) => "a boolean",
            (Number, Lang::Zh) => "數字",
            (Number, Lang::Pt) => "um número",
            (Number, Lang::En) => "a number",
            (String, Lang::Zh) => "字串",
            (String, Lang::Pt) => "um texto",
            (String, Lang::En) => "a string",
            (Array, Lang::Zh) => "陣列",
            (Array, Lang::Pt) => "uma lista",
            (Array, Lang::En) => "an array",
            (Object, Lang::Zh) => "物件",
            (Object, Lang::Pt) => "um objeto",
            (Object, Lang::En) => "an object",
        }
    }
}

/// What a value of a definition was meant to be, named where it has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The value of a key, named as written (`"fields"`).
    Key(String),
    ComputedValue,
    ApplicantFact,
    FieldName,
    RowField,
    Group,
    HolidayCalendarId,
    Holiday,
    KeyColumn,
    Member,
    Party,
    Role,
    Row,
    Rule,
    SignatureLevel,
    StepId,
    Step,
    Assignee,
    Example,
    ExpectedError,
    FieldOptions,
    RowFieldOrder,
    SeeingRoles,
}

impl Subject {
    pub fn key(name: &str) -> Self {
        Subject::Key(name.to_string())
    }

    pub fn name(&self, lang: Lang) -> String {
        use Subject::*;
        let (zh, pt, en) = match self {
            Key(k) => return format!("{k:?}"),
            ComputedValue => ("計算值", "um valor calculado", "a computed value"),
            ApplicantFact => ("申請人資料", "um dado do requerente", "a fact about the applicant"),
            FieldName => ("欄位名稱", "um nome de campo", "a field name"),
            RowField => ("行內欄位", "um campo da linha", "a field of the row"),
            Group => ("組", "um grupo", "a group"),
            HolidayCalendarId => ("假期日曆識別碼", "um identificador de calendário de feriados", "a holiday calendar id"),
            Holiday => ("假日", "um feriado", "a holiday"),
            KeyColumn => ("鍵欄", "uma coluna-chave", "a key column"),
            Member => ("成員", "um membro", "a member"),
            Party => ("當事人", "uma parte", "a party"),
            Role => ("角色", "um papel", "a role"),
            Row => ("行", "uma linha", "a row"),
            Rule => ("規則", "uma regra", "a rule"),
            SignatureLevel => ("簽署級別", "um nível de assinatura", "a signature level"),
            StepId => ("步驟識別碼", "um identificador de passo", "a step id"),
            Step => ("步驟", "um passo", "a step"),
            Assignee => ("負責人", "um responsável", "an assignee"),
            Example => ("範例", "um exemplo", "an example"),
            ExpectedError => ("預期錯誤", "um erro esperado", "an expected error"),
            FieldOptions => ("欄位的選項", "as opções de um campo", "the options of a field"),
            RowFieldOrder => ("行內欄位的次序", "a ordem dos campos da linha", "the order of the row's fields"),
            SeeingRoles => ("可查看該欄位的角色", "os papéis que podem ver o campo", "the roles that may see the field"),
        };
        match lang {
            Lang::Zh => zh,
            Lang::Pt => pt,
            Lang::En => en,
        }
        .to_string()
    }
}

/// Which id is written in lower-case words joined by `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordsId {
    Rule,
    Step,
    Group,
}

/// Why a file or folder could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// A path given (file or folder) whose metadata could not be read.
    Path,
    File,
    Directory,
}

/// What is wrong, with the names it concerns. One variant per kind of detail a definition check
/// produces; the English text of each is the checker's historical message.
#[derive(Debug, Clone, PartialEq, Eq, strum::EnumDiscriminants)]
#[strum_discriminants(name(DetailKind), derive(strum::EnumIter, strum::IntoStaticStr))]
pub enum Detail {
    // Reading definition JSON (`forms::parse`).
    UnknownKey { key: String, expected: Vec<String> },
    MissingKey { key: String },
    WrongType { what: Subject, expected: JsonType, found: JsonType },
    EmptyString { what: Subject },
    NotLocalized { found: JsonType },
    UnknownLanguage { key: String },
    TranslationEmpty { lang: Lang },
    TranslationNotString { lang: Lang, found: JsonType },
    TranslationMissing { lang: Lang },
    // Files and JSON (`catalog`).
    FileTooLarge { kib: u64, limit_kib: u64 },
    CannotRead { what: Unreadable, error: String },
    NoDefinitionFiles,
    DuplicateMember { name: String, at: String, line: usize, column: usize },
    JsonTooDeep { line: usize, column: usize },
    MalformedJson { line: usize, column: usize, error: String },
    NotAnObject { found: JsonType },
    MissingKind,
    UnknownKind { kind: String },
    NoSuchWorkflow { id: String },
    DuplicateDefinition { kind: String, id: String, first: String },
    NoDirectory,
    // Examples.
    ExampleContextToday,
    ExampleContextNow,
    ExampleContextNowNotToday { now: String, today: String },
    ExampleContextApplicant,
    ExampleContextShape,
    ExampleComputedDiffers { example: String, field: String, got: String, want: String },
    ValidExampleRefused { example: String, pointer: String, message: LocalizedText, code: String },
    InvalidExampleAccepted { example: String },
    ExpectedErrorMissing { example: String, code: String, pointer: String, got: Vec<String> },
    TooFewExamples { min: usize, key: String, found: usize },
    InvalidExampleNoExpect,
    // A form's id, version and settings.
    IdMalformed { id: String },
    IdNotFileName { id: String, stem: String },
    VersionMalformed { version: String },
    ReservedFieldName { name: String },
    SettingNotScalar,
    VersionReused { kind: String, id: String, version: String, hash: String, served: String },
    VersionLower { kind: String, id: String, version: String, served: String },
    // The schema.
    TimeFormat { format: String },
    SchemaNotObject { found: JsonType },
    SchemaDialect { expected: String, found: String },
    SchemaDialectMissing { expected: String },
    SchemaNotObjectType,
    SchemaUnknownType { found: String },
    SchemaInvalid { error: String },
    SchemaUncompilable { error: String },
    SchemaTooDeep,
    RemoteRef { reference: String },
    SchemaId,
    // Labels and options.
    LabelForUnknownField { path: String },
    FieldWithoutLabel { path: String },
    OptionsForNonEnum { path: String },
    OptionNotInEnum { value: String, path: String },
    EnumValueWithoutLabel { value: String, path: String },
    // Rules and computed values (`forms::logic`, `forms::definition`).
    RuleTooDeep,
    UnknownOperator { op: String },
    DividesByConstantZero { op: String },
    IteratorNeedsArray { op: String },
    TextInArithmetic { op: String, text: String },
    BooleanInArithmetic { op: String, value: bool },
    DecimalPlaces { op: String, found: String },
    NotATimeConstant { op: String, found: String, date_time_allowed: bool },
    TimeOperatorGivenNonText { op: String, found: String },
    UnknownSettingRead { var: String },
    UnknownFieldRead { var: String, row: Option<String>, fields: Vec<String> },
    FieldNotNumber { op: String, path: String, types: Vec<String> },
    FieldNotTime { op: String, path: String, types: Vec<String> },
    UnknownContext { var: String, values: Vec<String>, facts: Vec<String> },
    LogicUncompilable { error: String },
    RulePointerNotAField { target: String },
    RulePointerFixedRow { target: String, list: String },
    RulePointerNestedRows { target: String },
    RulePointerNowhere { target: String, row: Option<String>, fields: Vec<String> },
    WordsIdMalformed { of: WordsId, id: String },
    RuleIdTaken { id: String, first: usize },
    ComputedNotDeclared { field: String, row: Option<String>, fields: Vec<String> },
    ComputedNotReadOnly { field: String },
    ComputedTwice { field: String },
    ComputedKind,
    ComputedReadsUnknown { name: String, row: Option<String>, fields: Vec<String> },
    UnknownCalendar { id: String, known: Vec<String> },
    UnknownTable { id: String, known: Vec<String> },
    TableNoColumn { table: String, column: String },
    TableKeyWithoutValue { table: String, key: String },
    NotAKeyColumn { key: String, table: String, keys: Vec<String> },
    // Layout and summary.
    NotTopLevelField { name: String },
    PlacedTwice { name: String, at: String },
    FieldInNoGroup { name: String },
    NotASchemaField { field: String },
    UnknownRole { role: String, known: Vec<String> },
    UnknownWidget { widget: String, known: Vec<String> },
    UnknownApplicantFact { fact: String, known: Vec<String> },
    ApplicantFactTwice { fact: String },
    NotARowList { list: String },
    NotARowField { name: String, list: String, fields: Vec<String> },
    RowFieldPlacedTwice { name: String },
    RowFieldNotPlaced { field: String, list: String },
    WidgetWrongType { widget: String, wants: Vec<String>, field: String, held: Vec<String> },
    SummaryTooLong { max: usize, given: usize },
    SummaryTwice { name: String },
    SummaryRestricted { name: String },
    SummaryHoldsMany { name: String },
    // Reference data.
    NotAWeekday { found: String },
    HolidayDateInvalid,
    HolidayTwice { date: String },
    RowWithoutKey { column: String },
    SameKeysAsRow { row: usize, key: Vec<String> },
    // Workflows.
    UnknownAction { found: String },
    UnknownLevel { found: String },
    NoSuchForm { id: String },
    FormRoutedElsewhere { form: String, workflow: String },
    SelfApprovalPolicy,
    UnknownPersonRole { role: String, known: Vec<String> },
    NobodySubmits,
    FieldNotInForm { field: String, form: String },
    SubjectInArray,
    NoSteps,
    StepIdTaken { id: String, first: usize },
    StepForSubmitter { step: String },
    CoiPolicy,
    PartyNotAField { field: String, form: String },
    PartyIsGroup { field: String, form: String, example: String },
    PartyRestricted { field: String, top: String },
    PartyIsSubject { field: String },
    PartyTwice { field: String },
    AssigneeShape,
    UnknownRelativeRole { role: String, known: Vec<String> },
    UnknownGroup { group: String, known: Vec<String> },
    UnknownAssigneeKind { kind: String },
    ConditionUnknownSetting { var: String, form: String, known: Vec<String> },
    ConditionUnknownField { var: String, form: String },
    ConditionReadsRestricted { field: String, form: String },
    ConditionUncompilable { error: String },
    ParallelTooFew,
    MemberIdTwice { id: String },
    MemberInArray,
    StepSeatsShape,
    CompleteWhenShape,
    QuorumTooLarge { quorum: u64, seats: usize },
    ActionTwice { action: String },
    ActionNotString,
    NoActions,
    SecondFactorBool,
    DeadlineUnit,
    DeadlineDays { unit: String },
    CalendarNotLoaded { id: String, known: Vec<String> },
    NoCalendarLoaded,
    SeveralCalendars { known: Vec<String> },
    CalendarWithoutWorkingDays,
    ReminderOutOfRange,
    AfterUnknownStep { step: String, after: String },
    AfterItself { step: String },
    StepCycle { steps: Vec<String> },
    StepNeverRuns { step: String },
    StepUnreachable { step: String, after: String },
}

/// `a, b, c` (`a、b、c` in Chinese).
fn list(items: &[String], lang: Lang) -> String {
    items.join(if lang == Lang::Zh { "、" } else { ", " })
}

/// The fields a rule reads: the top-level ones, or those of a row of `row`.
fn fields_of(row: &Option<String>, fields: &[String], lang: Lang) -> String {
    let fields = list(fields, lang);
    match row {
        None => fields,
        Some(row) => tr!(lang, "{row} 一行的欄位：{fields}", "os campos de uma linha de {row}: {fields}", "the fields of a row of {row}: {fields}"),
    }
}

/// `a or b` (`a 或 b`, `a ou b`).
fn either(items: &[String], lang: Lang) -> String {
    items.join(match lang {
        Lang::Zh => " 或 ",
        Lang::Pt => " ou ",
        Lang::En => " or ",
    })
}

fn lang_name(of: Lang, lang: Lang) -> &'static str {
    match (of, lang) {
        (Lang::Zh, Lang::Zh) => "中文",
        (Lang::Pt, Lang::Zh) => "葡文",
        (Lang::En, Lang::Zh) => "英文",
        (Lang::Zh, Lang::Pt) => "chinês",
        (Lang::Pt, Lang::Pt) => "português",
        (Lang::En, Lang::Pt) => "inglês",
        (Lang::Zh, Lang::En) => "Chinese",
        (Lang::Pt, Lang::En) => "Portuguese",
        (Lang::En, Lang::En) => "English",
    }
}

impl fmt::Display for Detail {
    /// The English text (`Problem::message`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Lang::En))
    }
}

impl Detail {
    /// The kind, as a name (`"UnknownWidget"`), for tests and logs.
    pub fn kind(&self) -> &'static str {
        DetailKind::from(self).into()
    }

    /// The detail in the reader's language; names, pointers and values as found.
    pub fn render(&self, lang: Lang) -> String {
        // Each group of kinds renders its own and passes on the others.
        const GROUPS: [fn(&Detail, Lang) -> Option<String>; 17] = [
            Detail::render_reading,
            Detail::render_files,
            Detail::render_examples,
            Detail::render_form_header,
            Detail::render_schema,
            Detail::render_logic,
            Detail::render_reads,
            Detail::render_rule_pointers,
            Detail::render_computed,
            Detail::render_layout,
            Detail::render_summary,
            Detail::render_reference,
            Detail::render_workflow,
            Detail::render_parties,
            Detail::render_conditions,
            Detail::render_steps,
            Detail::render_deadlines,
        ];
        // The fallback is never shown: `tests/it/definition_checks.rs` reads every kind's three texts.
        GROUPS.iter().find_map(|group| group(self, lang)).unwrap_or_else(|| format!("{self:?}"))
    }

    /// The three texts at once.
    pub fn text(&self) -> LocalizedText {
        LocalizedText::new(self.render(Lang::Zh), self.render(Lang::Pt), self.render(Lang::En))
    }

    fn render_reading(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            UnknownKey { key, expected } => {
                let expected = list(expected, lang);
                tr!(
                    lang,
                    "未知的鍵 {key:?}；應為以下之一：{expected}",
                    "chave desconhecida {key:?}; espera-se uma de: {expected}",
                    "unknown key {key:?}; expected one of: {expected}"
                )
            }
            MissingKey { key } => tr!(lang, "缺少必需的鍵 {key:?}", "falta a chave obrigatória {key:?}", "missing required key {key:?}"),
            WrongType { what, expected, found } => {
                let (what, expected, found) = (what.name(lang), expected.name(lang), found.name(lang));
                tr!(lang, "{what}必須是{expected}，但現為{found}", "{what} tem de ser {expected}, mas é {found}", "{what} must be {expected}, found {found}")
            }
            EmptyString { what } => {
                let what = what.name(lang);
                tr!(lang, "{what}不可為空", "{what} não pode estar vazio", "{what} must not be empty")
            }
            NotLocalized { found } => {
                let found = found.name(lang);
                tr!(
                    lang,
                    "應為三種語言的文字 {{\"zh\", \"pt\", \"en\"}}，但現為{found}",
                    "espera-se um texto em três línguas {{\"zh\", \"pt\", \"en\"}}, mas é {found}",
                    "expected a text in three languages {{\"zh\", \"pt\", \"en\"}}, found {found}"
                )
            }
            UnknownLanguage { key } => tr!(
                lang,
                "未知的語言 {key:?}；應為 zh、pt 及 en",
                "língua desconhecida {key:?}; espera-se zh, pt e en",
                "unknown language {key:?}; expected zh, pt and en"
            ),
            TranslationEmpty { lang: of } => {
                let name = lang_name(*of, lang);
                tr!(lang, "{name}文字是空的", "o texto em {name} está vazio", "the {name} text is empty")
            }
            TranslationNotString { lang: of, found } => {
                let (name, found) = (lang_name(*of, lang), found.name(lang));
                tr!(
                    lang,
                    "{name}文字必須是字串，但現為{found}",
                    "o texto em {name} tem de ser um texto, mas é {found}",
                    "the {name} text must be a string, found {found}"
                )
            }
            TranslationMissing { lang: of } => {
                let (name, code) = (lang_name(*of, lang), of.code());
                tr!(lang, "缺少{name}文字（{code:?}）", "falta o texto em {name} ({code:?})", "missing the {name} text ({code:?})")
            }
            _ => return None,
        })
    }

    fn render_files(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            FileTooLarge { kib, limit_kib } => tr!(
                lang,
                "檔案大小為 {kib} KiB；定義最多只可 {limit_kib} KiB",
                "o ficheiro tem {kib} KiB; uma definição pode ter no máximo {limit_kib} KiB",
                "the file is {kib} KiB; a definition may be at most {limit_kib} KiB"
            ),
            CannotRead { what: Unreadable::Path, error } => tr!(lang, "無法讀取：{error}", "não foi possível ler: {error}", "cannot read: {error}"),
            CannotRead { what: Unreadable::File, error } => {
                tr!(lang, "無法讀取檔案：{error}", "não foi possível ler o ficheiro: {error}", "cannot read the file: {error}")
            }
            CannotRead { what: Unreadable::Directory, error } => {
                tr!(lang, "無法列出資料夾內容：{error}", "não foi possível listar a pasta: {error}", "cannot list the directory: {error}")
            }
            NoDefinitionFiles => tr!(lang, "找不到 *.json 定義檔", "não foram encontrados ficheiros de definição *.json", "no *.json definition files found"),
            DuplicateMember { name, at, line, column } => {
                let at_zh = if at.is_empty() { "最上層".to_string() } else { at.clone() };
                let at_pt = if at.is_empty() { "do nível de topo".to_string() } else { format!("em {at}") };
                let at_en = if at.is_empty() { "the top level".to_string() } else { at.clone() };
                tr!(
                    lang,
                    "成員名稱 \"{name}\" 在{at_zh}的物件中出現兩次（第 {line} 行，第 {column} 欄）；成員名稱必須唯一（RFC 7493）",
                    "o nome de membro \"{name}\" aparece duas vezes no objeto {at_pt} (linha {line}, coluna {column}); os nomes de membros têm de ser únicos (RFC 7493)",
                    "the member name \"{name}\" appears twice in the object at {at_en} (line {line}, column {column}); member names must be unique (RFC 7493)"
                )
            }
            JsonTooDeep { line, column } => tr!(
                lang,
                "JSON 嵌套超過 128 層（第 {line} 行，第 {column} 欄）",
                "o JSON tem mais de 128 níveis (linha {line}, coluna {column})",
                "the JSON is nested more than 128 levels deep (line {line}, column {column})"
            ),
            MalformedJson { line, column, error } => tr!(
                lang,
                "第 {line} 行第 {column} 欄的 JSON 格式不對：{error}",
                "JSON mal formado na linha {line}, coluna {column}: {error}",
                "malformed JSON at line {line}, column {column}: {error}"
            ),
            NotAnObject { found } => {
                let found = found.name(lang);
                tr!(
                    lang,
                    "定義必須是 JSON 物件，但現為{found}",
                    "uma definição tem de ser um objeto JSON, mas é {found}",
                    "a definition must be a JSON object, found {found}"
                )
            }
            MissingKind => tr!(
                lang,
                "缺少 \"kind\"：應為 \"form\"、\"workflow\"、\"holiday-calendar\"、\"rates-table\" 之一",
                "falta \"kind\": um de \"form\", \"workflow\", \"holiday-calendar\", \"rates-table\"",
                "missing \"kind\": one of \"form\", \"workflow\", \"holiday-calendar\", \"rates-table\""
            ),
            UnknownKind { kind } => tr!(
                lang,
                "未知的 kind {kind:?}：應為 \"form\"、\"workflow\"、\"holiday-calendar\"、\"rates-table\" 之一",
                "kind desconhecido {kind:?}: um de \"form\", \"workflow\", \"holiday-calendar\", \"rates-table\"",
                "unknown kind {kind:?}: one of \"form\", \"workflow\", \"holiday-calendar\", \"rates-table\""
            ),
            NoSuchWorkflow { id } => tr!(
                lang,
                "所給定義之中沒有識別碼為 {id:?} 的流程",
                "não há fluxo com o identificador {id:?} entre as definições dadas",
                "no workflow with id {id:?} among the definitions given"
            ),
            DuplicateDefinition { kind, id, first } => tr!(
                lang,
                "重複的 {kind} 識別碼 {id:?}：已在 {first} 中定義",
                "identificador de {kind} repetido {id:?}: já definido em {first}",
                "duplicate {kind} id {id:?}: already defined in {first}"
            ),
            NoDirectory => tr!(
                lang,
                "找不到人員名冊（此處或所給路徑所在的檢出目錄中的 seeds/directory/directory.json），因此無法檢查流程所指的組：請以 --directory FILE 提供",
                "não foi encontrado o registo de pessoal (seeds/directory/directory.json aqui ou na cópia dos caminhos dados), pelo que os grupos indicados pelos fluxos não podem ser verificados: indique --directory FILE",
                "no staff directory found (seeds/directory/directory.json here or in the checkout of the paths given), so the groups the workflows name cannot be checked: give --directory FILE"
            ),
            _ => return None,
        })
    }

    fn render_examples(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            ExampleContextToday => tr!(
                lang,
                "context 須有 \"today\"，格式為 YYYY-MM-DD",
                "o context precisa de \"today\" no formato YYYY-MM-DD",
                "the context needs \"today\" as YYYY-MM-DD"
            ),
            ExampleContextNow => tr!(
                lang,
                "\"now\" 必須是準確至分鐘的澳門日期及時間，格式為 YYYY-MM-DDTHH:MM",
                "\"now\" tem de ser uma data e hora de Macau ao minuto, no formato YYYY-MM-DDTHH:MM",
                "\"now\" must be a Macau date and time to the minute, YYYY-MM-DDTHH:MM"
            ),
            ExampleContextNowNotToday { now, today } => {
                tr!(
                    lang,
                    "\"now\"（{now}）不在 \"today\"（{today}）當日",
                    "\"now\" ({now}) não é no dia \"today\" ({today})",
                    "\"now\" ({now}) is not on \"today\" ({today})"
                )
            }
            ExampleContextApplicant => tr!(lang, "\"applicant\" 必須是物件", "\"applicant\" tem de ser um objeto", "\"applicant\" must be an object"),
            ExampleContextShape => tr!(
                lang,
                "範例的 context 必須是物件，且至少有 \"today\"",
                "o context dos exemplos tem de ser um objeto com pelo menos \"today\"",
                "the example context must be an object with at least \"today\""
            ),
            ExampleComputedDiffers { example, field, got, want } => tr!(
                lang,
                "範例 {example:?}：{field} 計得 {got}，範例預期 {want}",
                "exemplo {example:?}: {field} foi calculado como {got}, o exemplo espera {want}",
                "example {example:?}: {field} computed as {got}, the example expects {want}"
            ),
            ValidExampleRefused { example, pointer, message, code } => {
                let message = message.get(lang);
                tr!(
                    lang,
                    "有效範例 {example:?} 被拒絕：{pointer} {message}（{code}）",
                    "o exemplo válido {example:?} foi recusado: {pointer} {message} ({code})",
                    "valid example {example:?} was refused: {pointer} {message} ({code})"
                )
            }
            InvalidExampleAccepted { example } => {
                tr!(lang, "無效範例 {example:?} 被接受", "o exemplo inválido {example:?} foi aceite", "invalid example {example:?} was accepted")
            }
            ExpectedErrorMissing { example, code, pointer, got } => {
                let got = list(got, lang);
                tr!(
                    lang,
                    "無效範例 {example:?} 應在 {pointer:?} 以 {code} 失敗；實際失敗為：{got}",
                    "o exemplo inválido {example:?} devia falhar com {code} em {pointer:?}; falhou com: {got}",
                    "invalid example {example:?} should fail with {code} at {pointer:?}; it failed with: {got}"
                )
            }
            TooFewExamples { min, key, found } => tr!(
                lang,
                "{key} 範例至少需要 {min} 個，現有 {found} 個",
                "são precisos pelo menos {min} exemplos {key}, há {found}",
                "at least {min} {key} examples are needed, found {found}"
            ),
            InvalidExampleNoExpect => tr!(
                lang,
                "無效範例必須列出它產生的至少一個錯誤",
                "um exemplo inválido tem de indicar pelo menos um erro que produz",
                "an invalid example must state at least one error it produces"
            ),
            _ => return None,
        })
    }

    /// The id, version and settings of a form, and its versions against those served.
    fn render_form_header(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            IdMalformed { id } => tr!(
                lang,
                "識別碼 {id:?} 必須由小寫字母及數字組成，並以 '-' 連接",
                "o identificador {id:?} tem de ser letras minúsculas e algarismos unidos por '-'",
                "id {id:?} must be lower-case letters and digits joined by '-'"
            ),
            IdNotFileName { id, stem } => tr!(
                lang,
                "識別碼 {id:?} 與檔名 {stem:?}.json 不符",
                "o identificador {id:?} não corresponde ao nome do ficheiro {stem:?}.json",
                "id {id:?} does not match the file name {stem:?}.json"
            ),
            VersionMalformed { version } => tr!(
                lang,
                "版本 {version:?} 必須寫成 MAJOR.MINOR.PATCH，例如 \"1.0.0\"",
                "a versão {version:?} tem de ser MAJOR.MINOR.PATCH, por exemplo \"1.0.0\"",
                "version {version:?} must be MAJOR.MINOR.PATCH, e.g. \"1.0.0\""
            ),
            ReservedFieldName { name } => tr!(
                lang,
                "{name:?} 保留給規則使用（context.*、settings.*）；請把欄位改名",
                "{name:?} está reservado às regras (context.*, settings.*); mude o nome do campo",
                "{name:?} is reserved for rules (context.*, settings.*); rename the field"
            ),
            SettingNotScalar => tr!(
                lang,
                "設定值必須是數字、字串或真假值",
                "uma definição tem de ser um número, um texto ou um booleano",
                "a setting must be a number, a string or a boolean"
            ),
            VersionReused { kind, id, version, hash, served } => tr!(
                lang,
                "{kind} {id:?} 的版本 {version} 已以其他內容發佈（sha256 {hash}…）：一個版本號永遠只代表一份內容；請給此份一個高於 {served} 的版本",
                "a versão {version} de {kind} {id:?} já está publicada com outro conteúdo (sha256 {hash}…): uma versão designa um só conteúdo para sempre; dê a esta uma versão superior a {served}",
                "{kind} {id:?} version {version} is already served with other content (sha256 {hash}…): a version names one content for ever; give this one a higher version than {served}"
            ),
            VersionLower { kind, id, version, served } => tr!(
                lang,
                "{kind} {id:?} 的版本 {version} 低於已發佈的版本 {served}：版本號只會遞增；請給一個高於 {served} 的版本",
                "a versão {version} de {kind} {id:?} é inferior à versão publicada, {served}: as versões só aumentam; dê-lhe uma versão superior a {served}",
                "{kind} {id:?} version {version} is lower than the version served, {served}: versions only increase; give it a version above {served}"
            ),
            _ => return None,
        })
    }

    fn render_schema(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            TimeFormat { format } => tr!(
                lang,
                "\"time\" 會要求時區偏移（18:00:00+08:00）；如要一般人書寫的時刻（18:00、18:00:30、24:00），請用 \"format\": \"{format}\"",
                "\"time\" exigiria um desvio horário (18:00:00+08:00); para uma hora do dia como se escreve (18:00, 18:00:30, 24:00) use \"format\": \"{format}\"",
                "\"time\" would demand an offset (18:00:00+08:00); for a time of day as people write it (18:00, 18:00:30, 24:00) use \"format\": \"{format}\""
            ),
            SchemaNotObject { found } => {
                let found = found.name(lang);
                tr!(lang, "結構描述必須是物件，但現為{found}", "o esquema tem de ser um objeto, mas é {found}", "the schema must be an object, found {found}")
            }
            SchemaDialect { expected, found } => tr!(
                lang,
                "只接受 JSON Schema draft 2020-12（{expected:?}），但現為 {found:?}",
                "só é aceite JSON Schema draft 2020-12 ({expected:?}), mas é {found:?}",
                "only JSON Schema draft 2020-12 is accepted ({expected:?}), found {found:?}"
            ),
            SchemaDialectMissing { expected } => {
                tr!(lang, "缺少 \"$schema\": {expected:?}", "falta \"$schema\": {expected:?}", "missing \"$schema\": {expected:?}")
            }
            SchemaNotObjectType => tr!(
                lang,
                "表格的資料是物件：結構描述需要 \"type\": \"object\"",
                "os dados de um formulário são um objeto: o esquema precisa de \"type\": \"object\"",
                "the data of a form is an object: the schema needs \"type\": \"object\""
            ),
            SchemaUnknownType { found } => tr!(
                lang,
                "未知的類型 {found:?}；請用 string、number、integer、boolean、object、array、null 之一",
                "tipo desconhecido {found:?}; use um de: string, number, integer, boolean, object, array, null",
                "unknown type {found:?}; use one of: string, number, integer, boolean, object, array, null"
            ),
            SchemaInvalid { error } => {
                tr!(lang, "不是有效的 JSON Schema 2020-12：{error}", "não é JSON Schema 2020-12 válido: {error}", "not valid JSON Schema 2020-12: {error}")
            }
            SchemaUncompilable { error } => {
                tr!(lang, "無法編譯結構描述：{error}", "o esquema não pôde ser compilado: {error}", "the schema cannot be compiled: {error}")
            }
            SchemaTooDeep => tr!(lang, "結構描述嵌套超過 128 層", "o esquema tem mais de 128 níveis", "the schema is nested more than 128 levels deep"),
            RemoteRef { reference } => tr!(
                lang,
                "參照 {reference:?} 指向此定義以外之處；定義從不從網絡讀取：請把結構描述複製到 \"$defs\"，並使用 \"#/$defs/...\"",
                "a referência {reference:?} aponta para fora desta definição; as definições nunca vão buscar nada à rede: copie o esquema para \"$defs\" e use \"#/$defs/...\"",
                "reference {reference:?} points outside this definition; definitions never fetch from the network: copy the schema into \"$defs\" and use \"#/$defs/...\""
            ),
            SchemaId => tr!(
                lang,
                "不可使用 \"$id\"：表格的結構描述以表格識別碼及版本識別",
                "\"$id\" não é permitido: o esquema de um formulário é identificado pelo identificador e versão do formulário",
                "\"$id\" is not allowed: a form's schema is identified by the form id and version"
            ),
            LabelForUnknownField { path } => tr!(
                lang,
                "{path:?} 的標籤，但它不是結構描述中的欄位",
                "rótulo para {path:?}, que não é campo do esquema",
                "label for {path:?}, which is not a field of the schema"
            ),
            FieldWithoutLabel { path } => {
                tr!(lang, "欄位 {path:?} 沒有標籤（zh、pt、en）", "o campo {path:?} não tem rótulo (zh, pt, en)", "field {path:?} has no label (zh, pt, en)")
            }
            OptionsForNonEnum { path } => tr!(
                lang,
                "{path:?} 的選項，但它不是有 enum 的欄位",
                "opções para {path:?}, que não é um campo com enum",
                "options for {path:?}, which is not a field with an enum"
            ),
            OptionNotInEnum { value, path } => tr!(
                lang,
                "{value:?} 不是 {path:?} 的 enum 值之一",
                "{value:?} não é um dos valores do enum de {path:?}",
                "{value:?} is not one of the enum values of {path:?}"
            ),
            EnumValueWithoutLabel { value, path } => tr!(
                lang,
                "{path:?} 的 enum 值 {value:?} 沒有標籤（zh、pt、en）",
                "o valor {value:?} do enum de {path:?} não tem rótulo (zh, pt, en)",
                "enum value {value:?} of {path:?} has no label (zh, pt, en)"
            ),
            _ => return None,
        })
    }

    fn render_logic(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            RuleTooDeep => tr!(lang, "規則嵌套超過 64 層", "a regra tem mais de 64 níveis", "the rule is nested more than 64 levels deep"),
            UnknownOperator { op } => tr!(lang, "未知的運算子 {op:?}", "operador desconhecido {op:?}", "unknown operator {op:?}"),
            DividesByConstantZero { op } => tr!(
                lang,
                "{op:?} 以常數 0 作除數：規則永遠無法計算",
                "{op:?} pela constante 0: a regra nunca pode ser avaliada",
                "{op:?} by the constant 0: the rule can never be evaluated"
            ),
            IteratorNeedsArray { op } => {
                tr!(lang, "{op:?} 需要陣列 [list, logic]", "{op:?} recebe uma lista [list, logic]", "{op:?} takes an array [list, logic]")
            }
            TextInArithmetic { op, text } => tr!(
                lang,
                "{op} 得到文字 {text:?}：文字永不會轉為數字；請寫不加引號的數字",
                "{op} recebe o texto {text:?}: um texto nunca é convertido em número; escreva o número sem aspas",
                "{op} is given the text {text:?}: text is never turned into a number; write the number without quotes"
            ),
            BooleanInArithmetic { op, value } => tr!(
                lang,
                "{op} 得到 {value}：true 及 false 不是數字",
                "{op} recebe {value}: true e false não são números",
                "{op} is given {value}: true and false are not numbers"
            ),
            DecimalPlaces { op, found } => tr!(
                lang,
                "{op}：小數位數必須是 0 至 10 的整數，但現為 {found}",
                "{op}: as casas decimais têm de ser um número inteiro de 0 a 10, mas são {found}",
                "{op}: the decimal places must be a whole number from 0 to 10, found {found}"
            ),
            NotATimeConstant { op, found, date_time_allowed } => {
                let or = match (date_time_allowed, lang) {
                    (false, _) => "",
                    (true, Lang::Zh) => "或日期及時間（2026-03-02T18:30）",
                    (true, Lang::Pt) => " nem uma data e hora (2026-03-02T18:30)",
                    (true, Lang::En) => " or a date and time (2026-03-02T18:30)",
                };
                tr!(
                    lang,
                    "{op}：{found:?} 不是時刻（HH:MM，例如 \"18:30\"）{or}",
                    "{op}: {found:?} não é uma hora do dia (HH:MM, por exemplo \"18:30\"){or}",
                    "{op}: {found:?} is not a time of day (HH:MM, e.g. \"18:30\"){or}"
                )
            }
            TimeOperatorGivenNonText { op, found } => tr!(
                lang,
                "{op} 接受時刻（\"18:30\"）或日期及時間，而非 {found}",
                "{op} recebe horas do dia (\"18:30\") ou datas e horas, não {found}",
                "{op} takes times of day (\"18:30\") or dates and times, not {found}"
            ),
            _ => return None,
        })
    }

    /// What a rule or computed value reads, and where a rule points.
    fn render_reads(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            UnknownSettingRead { var } => {
                tr!(
                    lang,
                    "讀取 {var:?}，但表格沒有此設定",
                    "lê {var:?}, mas o formulário não tem essa definição",
                    "reads {var:?}, but the form has no such setting"
                )
            }
            UnknownFieldRead { var, row, fields } => {
                let known = fields_of(row, fields, lang);
                tr!(
                    lang,
                    "讀取 {var:?}，但它不是表格的欄位（{known}）",
                    "lê {var:?}, que não é campo do formulário ({known})",
                    "reads {var:?}, which is not a field of the form ({known})"
                )
            }
            FieldNotNumber { op, path, types } => {
                let types = either(types, lang);
                tr!(
                    lang,
                    "{op} 得到 {path:?}，它存放 {types}：文字永不會轉為數字；請把欄位宣告為數字",
                    "{op} recebe {path:?}, que contém {types}: um texto nunca é convertido em número; declare o campo como número",
                    "{op} is given {path:?}, which holds {types}: text is never turned into a number; declare the field a number"
                )
            }
            FieldNotTime { op, path, types } => {
                let types = either(types, lang);
                tr!(
                    lang,
                    "{op} 接受時刻或日期及時間，但 {path:?} 存放 {types}",
                    "{op} recebe horas do dia ou datas e horas, mas {path:?} contém {types}",
                    "{op} takes times of day or dates and times, but {path:?} holds {types}"
                )
            }
            UnknownContext { var, values, facts } => {
                let (values, facts) = (list(values, lang), list(facts, lang));
                tr!(
                    lang,
                    "讀取 {var:?}，但 carimbo 不提供此值：context 有 {values}，以及 context.applicant.<fact>，其中的資料為 {facts}（name 及 department_name 有 zh、pt、en）",
                    "lê {var:?}, que o carimbo não fornece: o context tem {values} e context.applicant.<fact> com os dados {facts} (name e department_name em zh, pt, en)",
                    "reads {var:?}, which carimbo does not supply: the context has {values} and context.applicant.<fact> with the facts {facts} (name and department_name in zh, pt, en)"
                )
            }
            LogicUncompilable { error } => {
                tr!(lang, "無法編譯邏輯：{error}", "a lógica não pôde ser compilada: {error}", "the logic cannot be compiled: {error}")
            }
            _ => return None,
        })
    }

    /// Where a rule points, and the ids of rules.
    fn render_rule_pointers(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            RulePointerNotAField { target } => tr!(
                lang,
                "{target:?} 不是指向表格欄位的 JSON 指標（例如 \"/end_date\"）",
                "{target:?} não é um ponteiro JSON para um campo do formulário (por exemplo \"/end_date\")",
                "{target:?} is not a JSON pointer to a field of the form (e.g. \"/end_date\")"
            ),
            RulePointerFixedRow { target, list } => tr!(
                lang,
                "{target:?} 指向固定的一行；請以 \"*\" 代表行（例如 \"/{list}/*/…\"），規則便會逐行檢查，錯誤指向出錯的那一行",
                "{target:?} aponta para uma linha fixa; escreva \"*\" para a linha (por exemplo \"/{list}/*/…\") e a regra é verificada em cada linha, com o erro a apontar para a linha que falha",
                "{target:?} points at one fixed row; write \"*\" for the row (e.g. \"/{list}/*/…\") and the rule is checked on every row, its error pointing at the row that fails"
            ),
            RulePointerNestedRows { target } => tr!(
                lang,
                "{target:?}：只有頂層清單的行會逐行檢查（\"/list/*/field\"）；行內的行不會",
                "{target:?}: só as linhas de uma lista de topo são verificadas uma a uma (\"/list/*/field\"); linhas dentro de linhas não",
                "{target:?}: only the rows of a top-level list are checked one by one (\"/list/*/field\"); rows inside rows are not"
            ),
            RulePointerNowhere { target, row, fields } => {
                let fields = list(fields, lang);
                let hint = match row {
                    Some(row) => tr!(lang, "{row} 的一行有：{fields}", "uma linha de {row} tem: {fields}", "a row of {row} has: {fields}"),
                    None => tr!(lang, "欄位：{fields}", "campos: {fields}", "fields: {fields}"),
                };
                tr!(
                    lang,
                    "{target:?} 不指向資料中的任何位置（{hint}）",
                    "{target:?} não indica nenhum lugar nos dados ({hint})",
                    "{target:?} names no place in the data ({hint})"
                )
            }
            WordsIdMalformed { of, id } => {
                let what = match (of, lang) {
                    (WordsId::Rule, Lang::Zh) => "規則識別碼",
                    (WordsId::Step, Lang::Zh) => "步驟識別碼",
                    (WordsId::Group, Lang::Zh) => "組識別碼",
                    (WordsId::Rule, Lang::Pt) => "o identificador de regra",
                    (WordsId::Step, Lang::Pt) => "o identificador de passo",
                    (WordsId::Group, Lang::Pt) => "o identificador de grupo",
                    (WordsId::Rule, Lang::En) => "rule id",
                    (WordsId::Step, Lang::En) => "step id",
                    (WordsId::Group, Lang::En) => "group id",
                };
                tr!(
                    lang,
                    "{what} {id:?} 必須由小寫單詞組成，並以 '-' 連接",
                    "{what} {id:?} tem de ser palavras em minúsculas unidas por '-'",
                    "{what} {id:?} must be lower-case words joined by '-'"
                )
            }
            RuleIdTaken { id, first } => tr!(
                lang,
                "規則識別碼 {id:?} 已被 /rules/{first} 使用",
                "o identificador de regra {id:?} já é usado por /rules/{first}",
                "rule id {id:?} is already used by /rules/{first}"
            ),
            _ => return None,
        })
    }

    /// Computed values and the reference data they look up.
    fn render_computed(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            ComputedNotDeclared { field, row, fields } => {
                let hint = match row {
                    Some(list_name) => {
                        let fields = list(fields, lang);
                        tr!(lang, "{list_name} 的一行宣告了：{fields}", "uma linha de {list_name} declara: {fields}", "a row of {list_name} declares: {fields}")
                    }
                    None => tr!(
                        lang,
                        "計算值是頂層欄位，或是頂層清單每一行的欄位，寫成 \"list.*.field\"",
                        "um valor calculado é um campo de topo, ou um campo de cada linha de uma lista de topo escrito \"list.*.field\"",
                        "a computed value is a top-level field, or a field of every row of a top-level list written \"list.*.field\""
                    ),
                };
                tr!(
                    lang,
                    "{field:?} 未在結構描述中宣告（{hint}）；請以 \"readOnly\": true 宣告",
                    "{field:?} não está declarado no esquema ({hint}); declare-o com \"readOnly\": true",
                    "{field:?} is not declared in the schema ({hint}); declare it with \"readOnly\": true"
                )
            }
            ComputedNotReadOnly { field } => tr!(
                lang,
                "{field:?} 由 carimbo 計算：請標上 \"readOnly\": true",
                "{field:?} é calculado pelo carimbo: marque-o \"readOnly\": true",
                "{field:?} is computed by carimbo: mark it \"readOnly\": true"
            ),
            ComputedTwice { field } => tr!(lang, "{field:?} 被計算了兩次", "{field:?} é calculado duas vezes", "{field:?} is computed twice"),
            ComputedKind => tr!(
                lang,
                "計算值須有且只有 \"working_days\"、\"lookup\"、\"logic\" 其中之一",
                "um valor calculado precisa de exatamente um de \"working_days\", \"lookup\", \"logic\"",
                "a computed value needs exactly one of \"working_days\", \"lookup\", \"logic\""
            ),
            ComputedReadsUnknown { name, row, fields } => {
                let known = fields_of(row, fields, lang);
                tr!(lang, "{name:?} 不是表格的欄位（{known}）", "{name:?} não é campo do formulário ({known})", "{name:?} is not a field of the form ({known})")
            }
            UnknownCalendar { id, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "沒有識別碼為 {id:?} 的假期日曆（已知：{known}）",
                    "não há calendário de feriados com o identificador {id:?} (conhecidos: {known})",
                    "no holiday calendar with id {id:?} (known: {known})"
                )
            }
            UnknownTable { id, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "沒有識別碼為 {id:?} 的費率表（已知：{known}）",
                    "não há tabela de taxas com o identificador {id:?} (conhecidas: {known})",
                    "no rates table with id {id:?} (known: {known})"
                )
            }
            TableNoColumn { table, column } => tr!(
                lang,
                "表 {table:?} 並非每一行都有欄 {column:?}",
                "a tabela {table:?} não tem a coluna {column:?} em todas as linhas",
                "table {table:?} has no column {column:?} in every row"
            ),
            TableKeyWithoutValue { table, key } => tr!(
                lang,
                "表 {table:?} 以 {key:?} 為鍵：請給它一個值",
                "a tabela {table:?} tem a chave {key:?}: dê-lhe um valor",
                "table {table:?} is keyed by {key:?}: give a value for it"
            ),
            NotAKeyColumn { key, table, keys } => {
                let keys = list(keys, lang);
                tr!(
                    lang,
                    "{key:?} 不是表 {table:?} 的鍵欄（鍵：{keys}）",
                    "{key:?} não é coluna-chave da tabela {table:?} (chaves: {keys})",
                    "{key:?} is not a key column of table {table:?} (keys: {keys})"
                )
            }
            _ => return None,
        })
    }

    fn render_layout(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            NotTopLevelField { name } => {
                tr!(lang, "{name:?} 不是結構描述的頂層欄位", "{name:?} não é campo de topo do esquema", "{name:?} is not a top-level field of the schema")
            }
            PlacedTwice { name, at } => tr!(lang, "{name:?} 已放在 {at}", "{name:?} já está colocado em {at}", "{name:?} is already placed at {at}"),
            FieldInNoGroup { name } => tr!(
                lang,
                "欄位 {name:?} 不屬任何組，因此頁面不會顯示它",
                "o campo {name:?} não está em nenhum grupo, pelo que a página não o mostraria",
                "field {name:?} is in no group, so the page would not show it"
            ),
            NotASchemaField { field } => {
                tr!(lang, "{field:?} 不是結構描述中的欄位", "{field:?} não é campo do esquema", "{field:?} is not a field of the schema")
            }
            UnknownRole { role, known } => {
                let known = list(known, lang);
                tr!(lang, "未知的角色 {role:?}（已知：{known}）", "papel desconhecido {role:?} (conhecidos: {known})", "unknown role {role:?} (known: {known})")
            }
            UnknownWidget { widget, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "未知的元件 {widget}；請用以下之一：{known}",
                    "elemento de entrada desconhecido {widget}; use um de {known}",
                    "unknown widget {widget}; use one of {known}"
                )
            }
            UnknownApplicantFact { fact, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "{fact:?} 不是 carimbo 所知的申請人資料（已知：{known}）",
                    "{fact:?} não é um dado que o carimbo conheça sobre o requerente (conhecidos: {known})",
                    "{fact:?} is not a fact carimbo knows about the applicant (known: {known})"
                )
            }
            ApplicantFactTwice { fact } => tr!(lang, "{fact:?} 顯示了兩次", "{fact:?} é mostrado duas vezes", "{fact:?} is shown twice"),
            NotARowList { list } => tr!(
                lang,
                "{list:?} 不是有宣告欄位的頂層行清單",
                "{list:?} não é uma lista de linhas de topo com campos declarados",
                "{list:?} is not a top-level list of rows with declared fields"
            ),
            NotARowField { name, list: rows, fields } => {
                let fields = list(fields, lang);
                tr!(
                    lang,
                    "{name:?} 不是 {rows} 一行的欄位（其欄位：{fields}）",
                    "{name:?} não é campo de uma linha de {rows} (os seus campos: {fields})",
                    "{name:?} is not a field of a row of {rows} (its fields: {fields})"
                )
            }
            RowFieldPlacedTwice { name } => tr!(lang, "{name:?} 放了兩次", "{name:?} está colocado duas vezes", "{name:?} is placed twice"),
            RowFieldNotPlaced { field, list } => tr!(
                lang,
                "{list} 各行的欄位 {field:?} 沒有放置，因此頁面不會顯示它",
                "o campo {field:?} das linhas de {list} não está colocado, pelo que a página não o mostraria",
                "field {field:?} of the rows of {list} is not placed, so the page would not show it"
            ),
            WidgetWrongType { widget, wants, field, held } => {
                let (wants, held) = (either(wants, lang), either(held, lang));
                tr!(
                    lang,
                    "{widget:?} 元件用於 {wants} 欄位；{field:?} 存放 {held}",
                    "o elemento {widget:?} é para campos {wants}; {field:?} contém {held}",
                    "the {widget:?} widget is for {wants} fields; {field:?} holds {held}"
                )
            }
            _ => return None,
        })
    }

    /// The summary an approver reads.
    fn render_summary(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            SummaryTooLong { max, given } => tr!(
                lang,
                "摘要最多列出 {max} 個欄位（現有 {given} 個）：請選出審批人作決定所需的欄位",
                "um resumo indica no máximo {max} campos ({given} dados): escolha o que um aprovador precisa para decidir",
                "a summary names at most {max} fields ({given} given): pick what an approver needs to decide"
            ),
            SummaryTwice { name } => tr!(lang, "{name:?} 列出了兩次", "{name:?} é indicado duas vezes", "{name:?} is named twice"),
            SummaryRestricted { name } => tr!(
                lang,
                "{name:?} 是受限欄位（layout.restricted），而摘要會向個案流程上的每個人顯示；請刪去",
                "{name:?} é restrito (layout.restricted), e um resumo é mostrado a todos no percurso do processo; retire-o",
                "{name:?} is restricted (layout.restricted), and a summary is shown to everyone on the case's route; leave it out"
            ),
            SummaryHoldsMany { name } => tr!(
                lang,
                "{name:?} 存放物件或清單；摘要只顯示單一值（請列出其欄位在頂層的對應欄位，或一個計算出的數目）",
                "{name:?} contém um objeto ou uma lista; um resumo mostra valores únicos (indique os campos de topo correspondentes aos seus campos, ou uma contagem calculada)",
                "{name:?} holds an object or a list; a summary shows single values (name one of its fields' top-level counterparts, or a computed count)"
            ),
            _ => return None,
        })
    }

    /// Holiday calendars and rates tables.
    fn render_reference(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            NotAWeekday { found } => tr!(
                lang,
                "{found} 不是星期中的一天（例如 \"saturday\"）",
                "{found} não é um dia da semana (por exemplo \"saturday\")",
                "{found} is not a day of the week (e.g. \"saturday\")"
            ),
            HolidayDateInvalid => tr!(
                lang,
                "日期必須是真實日期，寫成 YYYY-MM-DD",
                "a data tem de ser uma data real escrita YYYY-MM-DD",
                "the date must be a real date written YYYY-MM-DD"
            ),
            HolidayTwice { date } => tr!(lang, "{date} 列出了兩次", "{date} está indicado duas vezes", "{date} is listed twice"),
            RowWithoutKey { column } => tr!(
                lang,
                "該行沒有鍵欄 {column:?} 的值",
                "a linha não tem valor para a coluna-chave {column:?}",
                "the row has no value for key column {column:?}"
            ),
            SameKeysAsRow { row, key } => {
                let key = list(key, lang);
                tr!(lang, "鍵與第 {row} 行相同：{key}", "as mesmas chaves que a linha {row}: {key}", "same keys as row {row}: {key}")
            }
            _ => return None,
        })
    }

    fn render_workflow(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            UnknownAction { found } => tr!(
                lang,
                "未知的動作 {found:?}：請用 sign、approve、reject 或 return",
                "ação desconhecida {found:?}: use sign, approve, reject ou return",
                "unknown action {found:?}: use sign, approve, reject or return"
            ),
            UnknownLevel { found } => tr!(
                lang,
                "未知的簽署級別 {found:?}：請用 simple、advanced 或 qualified",
                "nível de assinatura desconhecido {found:?}: use simple, advanced ou qualified",
                "unknown signature level {found:?}: use simple, advanced or qualified"
            ),
            NoSuchForm { id } => tr!(
                lang,
                "所給定義之中沒有識別碼為 {id:?} 的表格",
                "não há formulário com o identificador {id:?} entre as definições dadas",
                "no form with id {id:?} among the definitions given"
            ),
            FormRoutedElsewhere { form, workflow } => tr!(
                lang,
                "表格 {form:?} 由流程 {workflow:?} 處理，而非此流程",
                "o formulário {form:?} segue o fluxo {workflow:?}, não este",
                "form {form:?} is routed by workflow {workflow:?}, not by this one"
            ),
            SelfApprovalPolicy => tr!(
                lang,
                "\"self_approval\" 必須是 \"skip\" 或 \"reassign\"",
                "\"self_approval\" tem de ser \"skip\" ou \"reassign\"",
                "\"self_approval\" must be \"skip\" or \"reassign\""
            ),
            UnknownPersonRole { role, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "未知的角色 {role:?}；人員角色有 {known}",
                    "papel desconhecido {role:?}; os papéis de pessoas são {known}",
                    "unknown role {role:?}; person roles are {known}"
                )
            }
            NobodySubmits => tr!(
                lang,
                "沒有人能提交此表格：請至少列出一個角色",
                "ninguém poderia submeter este formulário: indique pelo menos um papel",
                "nobody could submit this form: list at least one role"
            ),
            FieldNotInForm { field, form } => {
                tr!(lang, "{field:?} 不是表格 {form:?} 的欄位", "{field:?} não é campo do formulário {form:?}", "{field:?} is not a field of form {form:?}")
            }
            SubjectInArray => tr!(
                lang,
                "對象是一個人：該欄位不可位於陣列之內",
                "o interessado é uma pessoa: o campo não pode estar dentro de uma lista",
                "the subject is one person: the field cannot be inside an array"
            ),
            NoSteps => tr!(lang, "流程至少需要一個步驟", "um fluxo precisa de pelo menos um passo", "a workflow needs at least one step"),
            StepIdTaken { id, first } => tr!(
                lang,
                "步驟識別碼 {id:?} 已被 /steps/{first} 使用",
                "o identificador de passo {id:?} já é usado por /steps/{first}",
                "step id {id:?} is already used by /steps/{first}"
            ),
            StepForSubmitter { step } => tr!(
                lang,
                "步驟 {step:?} 交給申請人，但申請人是提交表格的人，永遠不會坐上本個案的席位：該席位總會被略去。申請人在提交時簽署（\"submit_signature\"）；請刪去此步驟，或在由他人提交時以 \"subject\" 指明申請人",
                "o passo {step:?} é atribuído ao requerente, que submeteu o formulário e por isso nunca ocupa um lugar do processo: o lugar é sempre retirado. O requerente assina ao submeter (\"submit_signature\"); retire o passo, ou indique o requerente com \"subject\" quando outra pessoa submete",
                "step {step:?} is assigned to the applicant, who submitted the form and so never sits on a seat of the case: the seat is always dropped. The applicant signs by submitting (\"submit_signature\"); remove the step, or name the applicant with \"subject\" when someone else submits"
            ),
            CoiPolicy => tr!(
                lang,
                "\"on_conflict\" 必須是 \"skip\"（略去只有當事人能坐的席位）或 \"reassign\"（交給被排除當事人的上級鏈中的下一位）",
                "\"on_conflict\" tem de ser \"skip\" (retirar um lugar que só partes poderiam ocupar) ou \"reassign\" (oferecê-lo à pessoa seguinte acima na hierarquia da parte afastada)",
                "\"on_conflict\" must be \"skip\" (drop a seat only parties could take) or \"reassign\" (offer it to the next person up the supervisor tree of the party kept off)"
            ),
            _ => return None,
        })
    }

    /// Conflict of interest, assignees and step conditions.
    fn render_parties(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            PartyNotAField { field, form } => tr!(
                lang,
                "當事人欄位 {field:?} 不是表格 {form:?} 的欄位：當事人以存放人員編號的欄位指明",
                "o campo de parte {field:?} não é campo do formulário {form:?}: uma parte é indicada por um campo que contém a identificação de uma pessoa",
                "party field {field:?} is not a field of form {form:?}: a party is named by a field holding a person id"
            ),
            PartyIsGroup { field, form, example } => tr!(
                lang,
                "表格 {form:?} 的當事人欄位 {field:?} 是一組欄位，而非人員編號：請指明其內存放編號的欄位（例如 {example:?}）",
                "o campo de parte {field:?} do formulário {form:?} é um grupo de campos, não a identificação de uma pessoa: indique o campo dentro dele que contém a identificação (por exemplo {example:?})",
                "party field {field:?} of form {form:?} is a group of fields, not a person id: name the field inside it that holds the id (e.g. {example:?})"
            ),
            PartyRestricted { field, top } => tr!(
                lang,
                "當事人欄位 {field:?} 位於受限欄位 {top:?} 之內：沒有其值的記錄無法顯示沒有當事人作出決定",
                "o campo de parte {field:?} está dentro do campo restrito {top:?}: um registo sem o seu valor não poderia mostrar que nenhuma parte decidiu",
                "party field {field:?} is inside the restricted field {top:?}: a record without its value could not show that no party decided"
            ),
            PartyIsSubject { field } => tr!(
                lang,
                "{field:?} 是對象本人的欄位，而對象一定是當事人：請刪去",
                "{field:?} é o campo do interessado, e o interessado é sempre parte: retire-o",
                "{field:?} is the subject's field, and the subject is always a party: leave it out"
            ),
            PartyTwice { field } => {
                tr!(lang, "當事人欄位 {field:?} 列出了兩次", "o campo de parte {field:?} está indicado duas vezes", "party field {field:?} is listed twice")
            }
            AssigneeShape => tr!(
                lang,
                "負責人必須是 {{\"role\": …}}、{{\"group\": …}}、{{\"field\": …}} 其中之一",
                "um responsável é exatamente um de {{\"role\": …}}, {{\"group\": …}}, {{\"field\": …}}",
                "an assignee is exactly one of {{\"role\": …}}, {{\"group\": …}}, {{\"field\": …}}"
            ),
            UnknownRelativeRole { role, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "未知的角色 {role:?}：相對角色有 {known}；組請用 {{\"group\": …}}",
                    "papel desconhecido {role:?}: os papéis relativos são {known}; para um grupo use {{\"group\": …}}",
                    "unknown role {role:?}: relative roles are {known}; use {{\"group\": …}} for a group"
                )
            }
            UnknownGroup { group, known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "未知的組 {group:?}；人員名冊中有：{known}",
                    "grupo desconhecido {group:?}; o registo de pessoal tem: {known}",
                    "unknown group {group:?}; the directory has: {known}"
                )
            }
            UnknownAssigneeKind { kind } => tr!(
                lang,
                "未知的負責人類別 {kind:?}：請用 role、group 或 field",
                "tipo de responsável desconhecido {kind:?}: use role, group ou field",
                "unknown assignee kind {kind:?}: use role, group or field"
            ),
            _ => return None,
        })
    }

    /// What a step condition reads.
    fn render_conditions(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            ConditionUnknownSetting { var, form, known } => {
                let has = match (known.is_empty(), lang) {
                    (true, Lang::Zh) => "它沒有任何設定".to_string(),
                    (true, Lang::Pt) => "não tem nenhuma".to_string(),
                    (true, Lang::En) => "it has none".to_string(),
                    (false, Lang::Zh) => format!("它有 {}", list(known, lang)),
                    (false, Lang::Pt) => format!("tem {}", list(known, lang)),
                    (false, Lang::En) => format!("it has {}", list(known, lang)),
                };
                tr!(
                    lang,
                    "讀取 {var:?}，但表格 {form:?} 沒有此設定（{has}）",
                    "lê {var:?}, mas o formulário {form:?} não tem essa definição ({has})",
                    "reads {var:?}, but form {form:?} has no such setting ({has})"
                )
            }
            ConditionUnknownField { var, form } => {
                tr!(
                    lang,
                    "讀取 {var:?}，但它不是表格 {form:?} 的欄位",
                    "lê {var:?}, que não é campo do formulário {form:?}",
                    "reads {var:?}, which is not a field of form {form:?}"
                )
            }
            ConditionReadsRestricted { field, form } => tr!(
                lang,
                "讀取 {field:?}，這是表格 {form:?} 的受限欄位：條件不可取決於部分記錄讀者看不到的值",
                "lê {field:?}, um campo restrito do formulário {form:?}: uma condição não pode depender de um valor que alguns leitores do registo não veem",
                "reads {field:?}, a restricted field of form {form:?}: a condition may not depend on a value some readers of the record cannot see"
            ),
            ConditionUncompilable { error } => {
                tr!(lang, "無法編譯條件：{error}", "a condição não pôde ser compilada: {error}", "the condition cannot be compiled: {error}")
            }
            _ => return None,
        })
    }

    fn render_steps(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            ParallelTooFew => {
                tr!(lang, "平行組至少需要兩名成員", "um grupo paralelo precisa de pelo menos dois membros", "a parallel group needs at least two members")
            }
            MemberIdTwice { id } => {
                tr!(lang, "成員識別碼 {id:?} 使用了兩次", "o identificador de membro {id:?} é usado duas vezes", "member id {id:?} is used twice")
            }
            MemberInArray => tr!(
                lang,
                "成員是一個席位：其欄位不可位於陣列之內",
                "um membro é um lugar: o seu campo não pode estar dentro de uma lista",
                "a member is one seat: its field cannot be inside an array"
            ),
            StepSeatsShape => tr!(
                lang,
                "步驟須有且只有 \"assignee\" 或 \"members\" 其中之一",
                "um passo precisa de exatamente um de \"assignee\" ou \"members\"",
                "a step needs exactly one of \"assignee\" or \"members\""
            ),
            CompleteWhenShape => tr!(
                lang,
                "\"complete_when\" 是 \"all\"、\"any\" 或 {{\"quorum\": N}}，其中 N ≥ 1",
                "\"complete_when\" é \"all\", \"any\" ou {{\"quorum\": N}} com N ≥ 1",
                "\"complete_when\" is \"all\", \"any\" or {{\"quorum\": N}} with N ≥ 1"
            ),
            QuorumTooLarge { quorum, seats } => tr!(
                lang,
                "法定人數 {quorum} 大於步驟的 {seats} 個席位：此步驟永遠無法完成",
                "um quórum de {quorum} é maior do que os {seats} lugar(es) do passo: o passo nunca poderia ficar concluído",
                "a quorum of {quorum} is larger than the step's {seats} seat(s): the step could never be done"
            ),
            ActionTwice { action } => tr!(lang, "動作 {action} 列出了兩次", "a ação {action} está indicada duas vezes", "action {action} is listed twice"),
            ActionNotString => tr!(lang, "動作是字串", "uma ação é um texto", "an action is a string"),
            NoActions => tr!(lang, "步驟至少需要一個動作", "um passo precisa de pelo menos uma ação", "a step needs at least one action"),
            SecondFactorBool => tr!(lang, "\"second_factor\" 是 true 或 false", "\"second_factor\" é true ou false", "\"second_factor\" is true or false"),
            _ => return None,
        })
    }

    /// Deadlines and the order of steps.
    fn render_deadlines(&self, lang: Lang) -> Option<String> {
        use Detail::*;
        Some(match self {
            DeadlineUnit => tr!(
                lang,
                "期限須有且只有 \"days\"（曆日）或 \"working_days\"（假期日曆的工作日）其中之一",
                "um prazo tem exatamente um de \"days\" (dias de calendário) ou \"working_days\" (dias úteis de um calendário de feriados)",
                "a deadline has exactly one of \"days\" (calendar days) or \"working_days\" (working days of a holiday calendar)"
            ),
            DeadlineDays { unit } => {
                tr!(lang, "\"{unit}\" 是 1 至 365 的整數", "\"{unit}\" é um número inteiro de 1 a 365", "\"{unit}\" is a whole number from 1 to 365")
            }
            CalendarNotLoaded { id, known } => {
                let known = match (known.is_empty(), lang) {
                    (true, Lang::Zh) => "一個也沒有載入".to_string(),
                    (true, Lang::Pt) => "nenhum está carregado".to_string(),
                    (true, Lang::En) => "none is".to_string(),
                    (false, _) => list(known, lang),
                };
                tr!(
                    lang,
                    "未載入假期日曆 {id:?}（{known}）",
                    "o calendário de feriados {id:?} não está carregado ({known})",
                    "no holiday calendar {id:?} is loaded ({known})"
                )
            }
            NoCalendarLoaded => tr!(
                lang,
                "工作日需要假期日曆，但一個也沒有載入：請把流程與 forms/reference 一同檢查",
                "os dias úteis precisam de um calendário de feriados e nenhum está carregado: verifique o fluxo juntamente com forms/reference",
                "working days need a holiday calendar, and none is loaded: check the workflow together with forms/reference"
            ),
            SeveralCalendars { known } => {
                let known = list(known, lang);
                tr!(
                    lang,
                    "已載入多個假期日曆（{known}）：請以 \"calendar\" 指明其一",
                    "estão carregados vários calendários de feriados ({known}): indique um com \"calendar\"",
                    "several holiday calendars are loaded ({known}): name one with \"calendar\""
                )
            }
            CalendarWithoutWorkingDays => tr!(
                lang,
                "日曆用於計算工作日：請與 \"working_days\" 一同使用",
                "um calendário conta dias úteis: use \"working_days\" com ele",
                "a calendar counts working days: use \"working_days\" with it"
            ),
            ReminderOutOfRange => tr!(
                lang,
                "提醒須在開啟後至少一天、期限之前（與期限的計算方式相同）",
                "o lembrete tem de vir pelo menos um dia depois da abertura e antes do prazo (contado como o prazo)",
                "the reminder must come at least a day after opening and before the deadline (counted as the deadline is)"
            ),
            AfterUnknownStep { step, after } => tr!(
                lang,
                "步驟 {step:?} 在 {after:?} 之後進行，但 {after:?} 不是此流程的步驟",
                "o passo {step:?} vem depois de {after:?}, que não é passo deste fluxo",
                "step {step:?} runs after {after:?}, which is not a step of this workflow"
            ),
            AfterItself { step } => tr!(lang, "步驟 {step:?} 在自己之後進行", "o passo {step:?} vem depois de si próprio", "step {step:?} runs after itself"),
            StepCycle { steps } => {
                let steps = steps.join(" → ");
                tr!(
                    lang,
                    "步驟 {steps} 互相等待成一個循環，因此沒有一個能開啟",
                    "os passos {steps} esperam uns pelos outros em ciclo, pelo que nenhum pode abrir",
                    "the steps {steps} wait for each other in a cycle, so none of them can ever open"
                )
            }
            StepNeverRuns { step } => tr!(
                lang,
                "步驟 {step:?} 永遠不會進行：其條件永遠為假",
                "o passo {step:?} nunca pode correr: a sua condição é sempre falsa",
                "step {step:?} can never run: its condition is always false"
            ),
            StepUnreachable { step, after } => tr!(
                lang,
                "步驟 {step:?} 無法到達：{after:?} 既不允許 sign 也不允許 approve，因此永遠不會完成",
                "o passo {step:?} é inalcançável: {after:?} não permite nem sign nem approve, pelo que nunca fica concluído",
                "step {step:?} is unreachable: {after:?} allows neither sign nor approve, so it is never done"
            ),
            _ => return None,
        })
    }

    /// One detail of each kind, with made-up names, so a test can read every text.
    pub fn example(kind: DetailKind) -> Detail {
        example_of(kind)
    }

    /// `example` of every kind there is, in declaration order.
    pub fn examples() -> Vec<Detail> {
        use strum::IntoEnumIterator;
        DetailKind::iter().map(example_of).collect()
    }
}

fn s(text: &str) -> String {
    text.to_string()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|t| t.to_string()).collect()
}

/// A table, one row per kind: the match is exhaustive over `DetailKind`, so a new kind cannot
/// be added without its example, and the test then reads its three texts.
fn example_of(kind: DetailKind) -> Detail {
    use Detail as D;
    use DetailKind as K;
    match kind {
        K::UnknownKey => D::UnknownKey { key: s("titel"), expected: v(&["title", "schema"]) },
        K::MissingKey => D::MissingKey { key: s("id") },
        K::WrongType => D::WrongType { what: Subject::Role, expected: JsonType::String, found: JsonType::Number },
        K::EmptyString => D::EmptyString { what: Subject::key("fields") },
        K::NotLocalized => D::NotLocalized { found: JsonType::String },
        K::UnknownLanguage => D::UnknownLanguage { key: s("fr") },
        K::TranslationEmpty => D::TranslationEmpty { lang: Lang::Zh },
        K::TranslationNotString => D::TranslationNotString { lang: Lang::Pt, found: JsonType::Array },
        K::TranslationMissing => D::TranslationMissing { lang: Lang::Pt },
        K::FileTooLarge => D::FileTooLarge { kib: 3000, limit_kib: 2048 },
        K::CannotRead => D::CannotRead { what: Unreadable::File, error: s("Permission denied (os error 13)") },
        K::NoDefinitionFiles => D::NoDefinitionFiles,
        K::DuplicateMember => D::DuplicateMember { name: s("id"), at: s("/labels"), line: 3, column: 9 },
        K::JsonTooDeep => D::JsonTooDeep { line: 1, column: 129 },
        K::MalformedJson => D::MalformedJson { line: 2, column: 5, error: s("expected `:`") },
        K::NotAnObject => D::NotAnObject { found: JsonType::Array },
        K::MissingKind => D::MissingKind,
        K::UnknownKind => D::UnknownKind { kind: s("from") },
        K::NoSuchWorkflow => D::NoSuchWorkflow { id: s("leave-flow") },
        K::DuplicateDefinition => D::DuplicateDefinition { kind: s("form"), id: s("home-leave"), first: s("forms/home-leave.json") },
        K::NoDirectory => D::NoDirectory,
        K::ExampleContextToday => D::ExampleContextToday,
        K::ExampleContextNow => D::ExampleContextNow,
        K::ExampleContextNowNotToday => D::ExampleContextNowNotToday { now: s("2026-03-03T09:00"), today: s("2026-03-02") },
        K::ExampleContextApplicant => D::ExampleContextApplicant,
        K::ExampleContextShape => D::ExampleContextShape,
        K::ExampleComputedDiffers => D::ExampleComputedDiffers { example: s("a week"), field: s("working_days"), got: s("5"), want: s("4") },
        K::ValidExampleRefused => D::ValidExampleRefused {
            example: s("a week"),
            pointer: s("/end_date"),
            message: LocalizedText::new("結束日期：必須填寫。", "Data de fim: preenchimento obrigatório.", "End date: this field is required."),
            code: s("CARIMBO-E0101"),
        },
        K::InvalidExampleAccepted => D::InvalidExampleAccepted { example: s("end before start") },
        K::ExpectedErrorMissing => D::ExpectedErrorMissing {
            example: s("end before start"),
            code: s("CARIMBO-E0103"),
            pointer: s("/end_date"),
            got: v(&["/start_date CARIMBO-E0101"]),
        },
        K::TooFewExamples => D::TooFewExamples { min: 3, key: s("invalid"), found: 1 },
        K::InvalidExampleNoExpect => D::InvalidExampleNoExpect,
        K::IdMalformed => D::IdMalformed { id: s("Special_Leave") },
        K::IdNotFileName => D::IdNotFileName { id: s("home-leave"), stem: s("leave") },
        K::VersionMalformed => D::VersionMalformed { version: s("1.0") },
        K::ReservedFieldName => D::ReservedFieldName { name: s("context") },
        K::SettingNotScalar => D::SettingNotScalar,
        K::VersionReused => D::VersionReused { kind: s("form"), id: s("home-leave"), version: s("1.0.0"), hash: s("0123456789ab"), served: s("1.0.0") },
        K::VersionLower => D::VersionLower { kind: s("workflow"), id: s("home-leave"), version: s("1.0.0"), served: s("1.2.0") },
        K::TimeFormat => D::TimeFormat { format: s("time-of-day") },
        K::SchemaNotObject => D::SchemaNotObject { found: JsonType::Boolean },
        K::SchemaDialect => {
            D::SchemaDialect { expected: s("https://json-schema.org/draft/2020-12/schema"), found: s("http://json-schema.org/draft-07/schema#") }
        }
        K::SchemaDialectMissing => D::SchemaDialectMissing { expected: s("https://json-schema.org/draft/2020-12/schema") },
        K::SchemaNotObjectType => D::SchemaNotObjectType,
        K::SchemaUnknownType => D::SchemaUnknownType { found: s("date") },
        K::SchemaInvalid => D::SchemaInvalid { error: s("-1 is less than the minimum of 0") },
        K::SchemaUncompilable => D::SchemaUncompilable { error: s("invalid regular expression") },
        K::SchemaTooDeep => D::SchemaTooDeep,
        K::RemoteRef => D::RemoteRef { reference: s("https://example.org/person.json") },
        K::SchemaId => D::SchemaId,
        K::LabelForUnknownField => D::LabelForUnknownField { path: s("reasn") },
        K::FieldWithoutLabel => D::FieldWithoutLabel { path: s("reason") },
        K::OptionsForNonEnum => D::OptionsForNonEnum { path: s("reason") },
        K::OptionNotInEnum => D::OptionNotInEnum { value: s("sick"), path: s("leave_type") },
        K::EnumValueWithoutLabel => D::EnumValueWithoutLabel { value: s("annual"), path: s("leave_type") },
        K::RuleTooDeep => D::RuleTooDeep,
        K::UnknownOperator => D::UnknownOperator { op: s("days_betwen") },
        K::DividesByConstantZero => D::DividesByConstantZero { op: s("/") },
        K::IteratorNeedsArray => D::IteratorNeedsArray { op: s("all") },
        K::TextInArithmetic => D::TextInArithmetic { op: s("+"), text: s("3") },
        K::BooleanInArithmetic => D::BooleanInArithmetic { op: s("*"), value: true },
        K::DecimalPlaces => D::DecimalPlaces { op: s("round"), found: s("12") },
        K::NotATimeConstant => D::NotATimeConstant { op: s("minutes_between"), found: s("6pm"), date_time_allowed: true },
        K::TimeOperatorGivenNonText => D::TimeOperatorGivenNonText { op: s("time_before"), found: s("18") },
        K::UnknownSettingRead => D::UnknownSettingRead { var: s("settings.max_days") },
        K::UnknownFieldRead => D::UnknownFieldRead { var: s("end_dat"), row: None, fields: v(&["start_date", "end_date"]) },
        K::FieldNotNumber => D::FieldNotNumber { op: s("+"), path: s("reason"), types: v(&["string"]) },
        K::FieldNotTime => D::FieldNotTime { op: s("minutes_between"), path: s("hours"), types: v(&["number"]) },
        K::UnknownContext => D::UnknownContext { var: s("context.tomorrow"), values: v(&["context.today", "context.now"]), facts: v(&["id", "grade"]) },
        K::LogicUncompilable => D::LogicUncompilable { error: s("unknown operator") },
        K::RulePointerNotAField => D::RulePointerNotAField { target: s("end_date") },
        K::RulePointerFixedRow => D::RulePointerFixedRow { target: s("/periods/0/end_time"), list: s("periods") },
        K::RulePointerNestedRows => D::RulePointerNestedRows { target: s("/periods/*/breaks/*/end") },
        K::RulePointerNowhere => D::RulePointerNowhere { target: s("/periods/*/ends"), row: Some(s("periods")), fields: v(&["date", "end_time"]) },
        K::WordsIdMalformed => D::WordsIdMalformed { of: WordsId::Rule, id: s("End Date") },
        K::RuleIdTaken => D::RuleIdTaken { id: s("end-after-start"), first: 0 },
        K::ComputedNotDeclared => D::ComputedNotDeclared { field: s("days"), row: None, fields: Vec::new() },
        K::ComputedNotReadOnly => D::ComputedNotReadOnly { field: s("working_days") },
        K::ComputedTwice => D::ComputedTwice { field: s("working_days") },
        K::ComputedKind => D::ComputedKind,
        K::ComputedReadsUnknown => D::ComputedReadsUnknown { name: s("start"), row: None, fields: v(&["start_date", "end_date"]) },
        K::UnknownCalendar => D::UnknownCalendar { id: s("macau-2025"), known: v(&["macau-2026"]) },
        K::UnknownTable => D::UnknownTable { id: s("allowance"), known: v(&["daily-allowance"]) },
        K::TableNoColumn => D::TableNoColumn { table: s("daily-allowance"), column: s("amount") },
        K::TableKeyWithoutValue => D::TableKeyWithoutValue { table: s("daily-allowance"), key: s("grade") },
        K::NotAKeyColumn => D::NotAKeyColumn { key: s("level"), table: s("daily-allowance"), keys: v(&["grade", "region"]) },
        K::NotTopLevelField => D::NotTopLevelField { name: s("no_such_field") },
        K::PlacedTwice => D::PlacedTwice { name: s("reason"), at: s("/layout/groups/0/fields/2") },
        K::FieldInNoGroup => D::FieldInNoGroup { name: s("reason") },
        K::NotASchemaField => D::NotASchemaField { field: s("reasn") },
        K::UnknownRole => D::UnknownRole { role: s("boss"), known: v(&["applicant", "hr"]) },
        K::UnknownWidget => D::UnknownWidget { widget: s("\"slider\""), known: v(&["textarea", "date"]) },
        K::UnknownApplicantFact => D::UnknownApplicantFact { fact: s("salary"), known: v(&["id", "grade"]) },
        K::ApplicantFactTwice => D::ApplicantFactTwice { fact: s("grade") },
        K::NotARowList => D::NotARowList { list: s("reason") },
        K::NotARowField => D::NotARowField { name: s("hours"), list: s("periods"), fields: v(&["date", "end_time"]) },
        K::RowFieldPlacedTwice => D::RowFieldPlacedTwice { name: s("date") },
        K::RowFieldNotPlaced => D::RowFieldNotPlaced { field: s("end_time"), list: s("periods") },
        K::WidgetWrongType => D::WidgetWrongType { widget: s("date"), wants: v(&["string"]), field: s("days"), held: v(&["integer"]) },
        K::SummaryTooLong => D::SummaryTooLong { max: 6, given: 8 },
        K::SummaryTwice => D::SummaryTwice { name: s("leave_type") },
        K::SummaryRestricted => D::SummaryRestricted { name: s("diagnosis") },
        K::SummaryHoldsMany => D::SummaryHoldsMany { name: s("periods") },
        K::NotAWeekday => D::NotAWeekday { found: s("\"caturday\"") },
        K::HolidayDateInvalid => D::HolidayDateInvalid,
        K::HolidayTwice => D::HolidayTwice { date: s("2026-10-01") },
        K::RowWithoutKey => D::RowWithoutKey { column: s("grade") },
        K::SameKeysAsRow => D::SameKeysAsRow { row: 0, key: v(&["\"A\"", "\"local\""]) },
        K::UnknownAction => D::UnknownAction { found: s("approove") },
        K::UnknownLevel => D::UnknownLevel { found: s("strong") },
        K::NoSuchForm => D::NoSuchForm { id: s("home-leave") },
        K::FormRoutedElsewhere => D::FormRoutedElsewhere { form: s("home-leave"), workflow: s("leave") },
        K::SelfApprovalPolicy => D::SelfApprovalPolicy,
        K::UnknownPersonRole => D::UnknownPersonRole { role: s("boss"), known: v(&["staff", "hr"]) },
        K::NobodySubmits => D::NobodySubmits,
        K::FieldNotInForm => D::FieldNotInForm { field: s("doctor"), form: s("home-leave") },
        K::SubjectInArray => D::SubjectInArray,
        K::NoSteps => D::NoSteps,
        K::StepIdTaken => D::StepIdTaken { id: s("supervisor"), first: 0 },
        K::StepForSubmitter => D::StepForSubmitter { step: s("confirm") },
        K::CoiPolicy => D::CoiPolicy,
        K::PartyNotAField => D::PartyNotAField { field: s("witness"), form: s("accident-note") },
        K::PartyIsGroup => D::PartyIsGroup { field: s("witness"), form: s("accident-note"), example: s("witness.id") },
        K::PartyRestricted => D::PartyRestricted { field: s("medical.doctor"), top: s("medical") },
        K::PartyIsSubject => D::PartyIsSubject { field: s("staff") },
        K::PartyTwice => D::PartyTwice { field: s("witness") },
        K::AssigneeShape => D::AssigneeShape,
        K::UnknownRelativeRole => D::UnknownRelativeRole { role: s("boss"), known: v(&["applicant", "supervisor", "head"]) },
        K::UnknownGroup => D::UnknownGroup { group: s("hrr"), known: v(&["hr", "finance"]) },
        K::UnknownAssigneeKind => D::UnknownAssigneeKind { kind: s("person") },
        K::ConditionUnknownSetting => D::ConditionUnknownSetting { var: s("settings.limit"), form: s("home-leave"), known: v(&["max_days"]) },
        K::ConditionUnknownField => D::ConditionUnknownField { var: s("days"), form: s("home-leave") },
        K::ConditionReadsRestricted => D::ConditionReadsRestricted { field: s("diagnosis"), form: s("sick-note") },
        K::ConditionUncompilable => D::ConditionUncompilable { error: s("unknown operator") },
        K::ParallelTooFew => D::ParallelTooFew,
        K::MemberIdTwice => D::MemberIdTwice { id: s("doctor") },
        K::MemberInArray => D::MemberInArray,
        K::StepSeatsShape => D::StepSeatsShape,
        K::CompleteWhenShape => D::CompleteWhenShape,
        K::QuorumTooLarge => D::QuorumTooLarge { quorum: 3, seats: 2 },
        K::ActionTwice => D::ActionTwice { action: s("approve") },
        K::ActionNotString => D::ActionNotString,
        K::NoActions => D::NoActions,
        K::SecondFactorBool => D::SecondFactorBool,
        K::DeadlineUnit => D::DeadlineUnit,
        K::DeadlineDays => D::DeadlineDays { unit: s("working_days") },
        K::CalendarNotLoaded => D::CalendarNotLoaded { id: s("macau-2025"), known: v(&["macau-2026"]) },
        K::NoCalendarLoaded => D::NoCalendarLoaded,
        K::SeveralCalendars => D::SeveralCalendars { known: v(&["macau-2025", "macau-2026"]) },
        K::CalendarWithoutWorkingDays => D::CalendarWithoutWorkingDays,
        K::ReminderOutOfRange => D::ReminderOutOfRange,
        K::AfterUnknownStep => D::AfterUnknownStep { step: s("hr"), after: s("head-of-unit") },
        K::AfterItself => D::AfterItself { step: s("hr") },
        K::StepCycle => D::StepCycle { steps: v(&["head", "hr", "head"]) },
        K::StepNeverRuns => D::StepNeverRuns { step: s("hr") },
        K::StepUnreachable => D::StepUnreachable { step: s("hr"), after: s("head") },
    }
}
