//! The usage figures page for administrators (and auditors): filters, the totals, a bar chart of
//! each month's outcomes and the table behind it, and every form × department × month row.
//!
//! The chart is an SVG drawn here on the server: the CSP allows no script from elsewhere and no
//! inline style, so there is no charting library; its colours come from `app.css` classes. The
//! SVG has a title and a description, and the same numbers are in the table under it, which is
//! what a screen reader reads.

use super::{PageCaller, PageLang, layout, page_with_status, require_role, t, when};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::usage::{READERS, snapshot};
use crate::i18n::Lang;
use crate::usage::{Figures, MonthFigures, NO_DEPARTMENT, Snapshot, UsageFilter, UsageView};
use crate::workflow::Level;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn show(State(state): State<Arc<AppState>>, PageCaller(caller): PageCaller, pl: PageLang, Query(pairs): Query<Vec<(String, String)>>) -> Response {
    if let Err(r) = require_role(&pl, &caller, &READERS) {
        return r;
    }
    let lang = pl.lang;
    // The filter form shows what was asked for, even when it is refused.
    let asked = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let asked: BTreeMap<&str, String> = UsageFilter::PARAMETERS.iter().map(|p| (*p, asked(p))).collect();
    let (status, content) = match UsageFilter::parse(&pairs) {
        Err(e) => (StatusCode::BAD_REQUEST, html! { p.error role="alert" { (ApiError::from(e).lang(lang).problem().detail) } }),
        Ok(filter) => match snapshot(&state).await {
            Ok(snap) => (StatusCode::OK, figures(lang, &snap, &snap.report.view(&filter), &state)),
            Err(e) => (e.status, html! { p.error role="alert" { (e.lang(lang).problem().detail) } }),
        },
    };
    let choices = choices(&state, lang);
    page_with_status(&pl, status, usage_page(&pl, &caller, &asked, choices, content))
}

/// The forms and departments the filter offers: those defined now and those with figures.
struct Choices {
    forms: Vec<(String, String)>,
    departments: Vec<(String, String)>,
}

fn choices(state: &AppState, lang: Lang) -> Choices {
    let catalog = state.cases.catalog();
    let dir = state.cases.directory();
    let mut forms: BTreeMap<String, String> = catalog.forms.values().map(|f| (f.id.clone(), f.title.get(lang).to_string())).collect();
    let mut departments: BTreeMap<String, String> = dir.departments().map(|d| (d.id.clone(), format!("{} ({})", d.name.get(lang), d.id))).collect();
    departments.insert(NO_DEPARTMENT.into(), t(lang, "（無部門）", "(sem departamento)", "(no department)").into());
    // Forms and departments that have cases but are no longer defined still get a choice.
    if let Some(snap) = state.usage.last() {
        for f in snap.report.forms() {
            forms.entry(f.to_string()).or_insert_with(|| f.to_string());
        }
        for d in snap.report.departments() {
            departments.entry(d.to_string()).or_insert_with(|| d.to_string());
        }
    }
    Choices { forms: forms.into_iter().collect(), departments: departments.into_iter().collect() }
}

fn usage_page(pl: &PageLang, caller: &Caller, asked: &BTreeMap<&str, String>, choices: Choices, content: Markup) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "使用統計", "Estatísticas de utilização", "Usage figures");
    let Choices { forms, departments } = choices;
    let value = |name: &str| asked.get(name).cloned().unwrap_or_default();
    let all = t(lang, "全部", "Todos", "All");
    html! {
        (layout(pl, title, Some(caller), html! {
            h1 { (title) }
            form #usage-filter.filters method="get" action="/admin/usage" {
                label { (t(lang, "表格", "Formulário", "Form"))
                    select name="form" {
                        option value="" { (all) }
                        @for (id, name) in &forms { option value=(id) selected[value("form") == *id] { (name) } }
                    }
                }
                label { (t(lang, "部門", "Departamento", "Department"))
                    select name="department" {
                        option value="" { (all) }
                        @for (id, name) in &departments { option value=(id) selected[value("department") == *id] { (name) } }
                    }
                }
                label { (t(lang, "由（月份）", "De (mês)", "From (month)")) input type="month" name="from" value=(value("from")) placeholder="2026-01"; }
                label { (t(lang, "至（月份）", "Até (mês)", "To (month)")) input type="month" name="to" value=(value("to")) placeholder="2026-12"; }
                button type="submit" { (t(lang, "顯示", "Mostrar", "Show")) }
            }
            (content)
        }))
    }
}

/// A figure's name in the page's language.
fn label(lang: Lang, figure: &str) -> &'static str {
    match figure {
        "submitted" => t(lang, "已提交", "Submetidos", "Submitted"),
        "completed" => t(lang, "已完成", "Concluídos", "Completed"),
        "rejected" => t(lang, "不批准", "Indeferidos", "Rejected"),
        "returned" => t(lang, "退回修改", "Devolvidos para correção", "Returned for correction"),
        "withdrawn" => t(lang, "已撤回", "Retirados", "Withdrawn"),
        "in_progress" => t(lang, "處理中", "Em curso", "In progress"),
        "past_deadline" => t(lang, "逾期未處理", "Fora de prazo", "Past deadline"),
        "p50" => t(lang, "完成時間中位數", "Tempo mediano até à conclusão", "Median time to completion"),
        "p90" => t(lang, "完成時間第90百分位", "Percentil 90 do tempo até à conclusão", "90th percentile time to completion"),
        _ => "?",
    }
}

fn signatures_label(lang: Lang, level: Level) -> &'static str {
    match level {
        Level::Simple => t(lang, "簡單電子簽名", "Assinaturas simples", "Simple signatures"),
        Level::Advanced => t(lang, "進階電子簽名", "Assinaturas avançadas", "Advanced signatures"),
        Level::Qualified => t(lang, "合格電子簽名", "Assinaturas qualificadas", "Qualified signatures"),
    }
}

/// The outcomes the chart draws, in the order of its bars.
const SERIES: [&str; 5] = ["submitted", "completed", "rejected", "returned", "withdrawn"];

fn series_value(f: &Figures, name: &str) -> u64 {
    match name {
        "submitted" => f.submitted,
        "completed" => f.completed,
        "rejected" => f.rejected,
        "returned" => f.returned,
        _ => f.withdrawn,
    }
}

/// A duration for reading: seconds, minutes, hours or days, one decimal where it helps.
pub fn duration(lang: Lang, seconds: Option<i64>) -> String {
    let Some(s) = seconds else { return "—".into() };
    let (value, unit) = match s {
        s if s < 60 => (format!("{s}"), t(lang, "秒", "s", "s")),
        s if s < 3600 => (format!("{}", s / 60), t(lang, "分鐘", "min", "min")),
        s if s < 48 * 3600 => (format!("{:.1}", s as f64 / 3600.0), t(lang, "小時", "h", "h")),
        s => (format!("{:.1}", s as f64 / 86400.0), t(lang, "天", "dias", "days")),
    };
    format!("{value} {unit}")
}

fn figures(lang: Lang, snap: &Snapshot, view: &UsageView, state: &AppState) -> Markup {
    let catalog = state.cases.catalog();
    let form_title = |id: &str| catalog.form(id).map(|f| f.title.get(lang).to_string()).unwrap_or_else(|| id.to_string());
    let tot = &view.totals;
    html! {
        p.muted #usage-meta {
            (t(lang, "計算時間：", "Calculado em ", "Computed at ")) (when(lang, &snap.computed_at))
            (t(lang, "，用時 ", ", em ", " in ")) (format!("{:.0}", snap.took.as_secs_f64() * 1000.0)) (t(lang, " 毫秒", " ms", " ms"))
            (t(lang, "，共讀取 ", ", a partir de ", " from ")) (snap.report.cases_read) (t(lang, " 宗個案。", " processos.", " cases."))
            " " (t(lang, "數字最多每分鐘重新計算一次。月份為提交月份（澳門時間）。",
                "Os números são recalculados no máximo uma vez por minuto. Os meses são os da submissão (hora de Macau).",
                "The figures are recomputed at most once a minute. Months are months of submission, Macau time."))
        }
        @if !snap.report.problems.is_empty() {
            details.error {
                summary { (snap.report.problems.len()) (t(lang, " 宗個案未能完整計算", " processos não foram contados por inteiro", " cases could not be counted fully")) }
                ul { @for p in &snap.report.problems { li { code { (p.case_id) } ": " (p.problem) } } }
            }
        }
        h2 { (t(lang, "總計", "Totais", "Totals")) }
        dl.facts #usage-totals {
            @for name in ["submitted", "completed", "rejected", "returned", "withdrawn", "in_progress"] {
                dt { (label(lang, name)) } dd data-figure=(name) { (figure(tot, name)) }
            }
            dt { (label(lang, "past_deadline")) } dd data-figure="past_deadline" { @if tot.past_deadline > 0 { strong.error { (tot.past_deadline) } } @else { (tot.past_deadline) } }
            dt { (label(lang, "p50")) } dd data-figure="p50" { (duration(lang, tot.time_to_completion.p50_seconds)) }
            dt { (label(lang, "p90")) } dd data-figure="p90" { (duration(lang, tot.time_to_completion.p90_seconds)) }
            @for level in [Level::Simple, Level::Advanced, Level::Qualified] {
                dt { (signatures_label(lang, level)) } dd data-figure=(level.as_str()) { (tot.signatures.get(level)) }
            }
        }
        @if view.rows.is_empty() {
            p #usage-empty { (t(lang, "所選範圍內沒有個案。", "Não há processos no período e filtros escolhidos.", "No cases match these filters.")) }
        } @else {
            h2 { (t(lang, "每月結果", "Resultados por mês", "Outcomes per month")) }
            (chart(lang, &view.by_month))
            div.scroll tabindex="0" role="region" aria-labelledby="usage-months-caption" {
                table.usage #usage-months {
                    caption #usage-months-caption { (t(lang, "每月結果（圖表數據）", "Resultados por mês (os dados do gráfico)", "Outcomes per month (the chart's data)")) }
                    thead { tr {
                        th scope="col" { (t(lang, "月份", "Mês", "Month")) }
                        @for name in SERIES { th scope="col" { (label(lang, name)) } }
                        th scope="col" { (label(lang, "in_progress")) }
                        th scope="col" { (label(lang, "past_deadline")) }
                        th scope="col" { (label(lang, "p50")) }
                        th scope="col" { (label(lang, "p90")) }
                    } }
                    tbody { @for m in &view.by_month {
                        tr {
                            th scope="row" { (m.month) }
                            @for name in SERIES { td.num { (series_value(&m.figures, name)) } }
                            td.num { (m.figures.in_progress) }
                            td.num { (m.figures.past_deadline) }
                            td.num { (duration(lang, m.figures.time_to_completion.p50_seconds)) }
                            td.num { (duration(lang, m.figures.time_to_completion.p90_seconds)) }
                        }
                    } }
                }
            }
            h2 { (t(lang, "按表格、部門及月份", "Por formulário, departamento e mês", "By form, department and month")) }
            div.scroll tabindex="0" role="region" aria-labelledby="usage-rows-caption" {
                table.usage #usage-rows {
                    caption #usage-rows-caption { (t(lang, "每行：一份表格、提交人部門及提交月份", "Cada linha: um formulário, o departamento de quem submeteu e o mês da submissão", "Each row: a form, the submitter's department and the month of submission")) }
                    thead { tr {
                        th scope="col" { (t(lang, "表格", "Formulário", "Form")) }
                        th scope="col" { (t(lang, "部門", "Departamento", "Department")) }
                        th scope="col" { (t(lang, "月份", "Mês", "Month")) }
                        @for name in SERIES { th scope="col" { (label(lang, name)) } }
                        th scope="col" { (label(lang, "in_progress")) }
                        th scope="col" { (label(lang, "past_deadline")) }
                        th scope="col" { (label(lang, "p50")) }
                        th scope="col" { (label(lang, "p90")) }
                        th scope="col" { (t(lang, "簽名（簡單／進階／合格）", "Assinaturas (simples / avançada / qualificada)", "Signatures (simple / advanced / qualified)")) }
                    } }
                    tbody { @for r in &view.rows {
                        tr {
                            th scope="row" { (form_title(&r.form)) }
                            td { (r.department) }
                            td { (r.month) }
                            @for name in SERIES { td.num { (series_value(&r.figures, name)) } }
                            td.num { (r.figures.in_progress) }
                            td.num { @if r.figures.past_deadline > 0 { strong.error { (r.figures.past_deadline) } } @else { "0" } }
                            td.num { (duration(lang, r.figures.time_to_completion.p50_seconds)) }
                            td.num { (duration(lang, r.figures.time_to_completion.p90_seconds)) }
                            td.num { (r.figures.signatures.simple) " / " (r.figures.signatures.advanced) " / " (r.figures.signatures.qualified) }
                        }
                    } }
                }
            }
        }
    }
}

fn figure(f: &Figures, name: &str) -> u64 {
    match name {
        "in_progress" => f.in_progress,
        "past_deadline" => f.past_deadline,
        other => series_value(f, other),
    }
}

/// A round step for the value axis: 1, 2 or 5 × 10ⁿ, giving at most five gridlines.
fn tick_step(max: u64) -> u64 {
    let mut magnitude = 1;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if max.div_ceil(step) <= 5 {
                return step;
            }
        }
        magnitude *= 10;
    }
}

/// Grouped bars: per month, one bar for each outcome in `SERIES`.
fn chart(lang: Lang, months: &[MonthFigures]) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 280.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 36.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max = months.iter().flat_map(|m| SERIES.iter().map(|s| series_value(&m.figures, s))).max().unwrap_or(0).max(1);
    let step = tick_step(max);
    let top = max.div_ceil(step) * step;
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / top as f64;
    let group = plot_w / months.len().max(1) as f64;
    let bar = (group * 0.8 / SERIES.len() as f64).min(28.0);
    let inner = bar * SERIES.len() as f64;
    // With many months, label every k-th so the labels do not overlap (about 60 px each).
    let every = ((60.0 / group).ceil() as usize).max(1);
    let title = t(
        lang,
        "每月提交、完成、不批准、退回修改及撤回的個案",
        "Processos submetidos, concluídos, indeferidos, devolvidos e retirados por mês",
        "Cases submitted, completed, rejected, returned and withdrawn per month",
    );
    let first = months.first().map(|m| m.month.to_string()).unwrap_or_default();
    let last = months.last().map(|m| m.month.to_string()).unwrap_or_default();
    let desc = match lang {
        Lang::Zh => format!("柱狀圖，{first} 至 {last}，每月五條柱：已提交、已完成、不批准、退回修改、已撤回。數字見下表。"),
        Lang::Pt => format!(
            "Gráfico de barras de {first} a {last}: por mês, cinco barras (submetidos, concluídos, indeferidos, devolvidos, retirados). Os números estão na tabela abaixo."
        ),
        Lang::En => format!(
            "Bar chart from {first} to {last}: for each month, five bars (submitted, completed, rejected, returned, withdrawn). The numbers are in the table below."
        ),
    };
    html! {
        ul.legend aria-hidden="true" {
            @for name in SERIES { li { span class=(format!("swatch s-{name}")) {} (label(lang, name)) } }
        }
        svg.chart #usage-chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby="usage-chart-title usage-chart-desc" {
            title #usage-chart-title { (title) }
            desc #usage-chart-desc { (desc) }
            @for i in 0..=(top / step) {
                @let v = i * step;
                line.grid x1=(LEFT) x2=(W - RIGHT) y1=(y(v)) y2=(y(v)) {}
                text.tick x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" { (v) }
            }
            @for (i, m) in months.iter().enumerate() {
                @let x0 = LEFT + group * i as f64 + (group - inner) / 2.0;
                g {
                    @for (j, name) in SERIES.iter().enumerate() {
                        @let v = series_value(&m.figures, name);
                        rect class=(format!("s-{name}")) x=(format!("{:.1}", x0 + bar * j as f64)) y=(format!("{:.1}", y(v))) width=(format!("{:.1}", (bar - 1.0).max(1.0))) height=(format!("{:.1}", TOP + plot_h - y(v))) {
                            title { (m.month) " · " (label(lang, name)) ": " (v) }
                        }
                    }
                    @if i % every == 0 {
                        text.month x=(format!("{:.1}", LEFT + group * (i as f64 + 0.5))) y=(H - BOTTOM + 18.0) text-anchor="middle" { (m.month) }
                    }
                }
            }
            line.axis x1=(LEFT) x2=(W - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) {}
        }
    }
}
