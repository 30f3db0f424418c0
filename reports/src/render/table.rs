//! One table, two pages: a table is described once as cells and rendered
//! to Markdown (pipes escaped, code in backticks) and to HTML (escaped by
//! maud, code in `<code>`), so the two pages cannot disagree on a figure.

use maud::{Markup, html};
use std::borrow::Cow;
use std::fmt::Write as _;

/// One cell.
pub(super) enum Cell {
    /// Plain text.
    Text(String),
    /// A figure, right-aligned.
    Number(String),
    /// Code (a path, a hash, a command).
    Code(String),
    /// Several commands, one after another.
    Codes(Vec<String>),
    /// Text linking to an anchor of the HTML page (plain in Markdown,
    /// whose anchors depend on the renderer).
    Link(String, String),
}

/// A column: its heading and whether it holds figures.
pub(super) struct Column {
    pub(super) name: Cow<'static, str>,
    pub(super) number: bool,
}

/// A text column.
pub(super) const fn text(name: &'static str) -> Column {
    Column { name: Cow::Borrowed(name), number: false }
}

/// A figures column.
pub(super) const fn figures(name: &'static str) -> Column {
    Column { name: Cow::Borrowed(name), number: true }
}

/// A figures column whose heading is made at run time (a scenario's name).
pub(super) fn figures_named(name: String) -> Column {
    Column { name: Cow::Owned(name), number: true }
}

/// Columns and rows of cells; a row has one cell per column.
pub(super) struct Table {
    pub(super) columns: Vec<Column>,
    pub(super) rows: Vec<Vec<Cell>>,
}

/// Text as one Markdown table cell: pipes escaped, line breaks as spaces.
pub(super) fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl Cell {
    fn markdown(&self) -> String {
        match self {
            Self::Text(text) | Self::Number(text) | Self::Link(text, _) => md_cell(text),
            Self::Code(code) => format!("`{}`", md_cell(code)),
            Self::Codes(codes) => {
                codes.iter().map(|code| format!("`{}`", md_cell(code))).collect::<Vec<_>>().join("; ")
            }
        }
    }

    fn html(&self) -> Markup {
        match self {
            Self::Text(text) => html! { td { (text) } },
            Self::Number(text) => html! { td.n { (text) } },
            Self::Code(code) => html! { td { code { (code) } } },
            Self::Codes(codes) => {
                html! { td { @for (index, code) in codes.iter().enumerate() { @if index > 0 { br; } code { (code) } } } }
            }
            Self::Link(text, anchor) => html! { td { a href=(format!("#{anchor}")) { (text) } } },
        }
    }
}

impl Table {
    /// A table with these columns and no rows yet.
    pub(super) fn new(columns: Vec<Column>) -> Self {
        Self { columns, rows: Vec::new() }
    }

    /// Adds a row; it must have a cell per column.
    pub(super) fn row(&mut self, cells: Vec<Cell>) {
        assert_eq!(cells.len(), self.columns.len(), "a row has one cell per column");
        self.rows.push(cells);
    }

    /// The table in Markdown, after a blank line.
    pub(super) fn markdown(&self, md: &mut String) {
        let names: Vec<String> = self.columns.iter().map(|column| md_cell(&column.name)).collect();
        let rules: Vec<&str> = self.columns.iter().map(|column| if column.number { "---:" } else { "---" }).collect();
        let _ = write!(md, "\n| {} |\n| {} |\n", names.join(" | "), rules.join(" | "));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(Cell::markdown).collect();
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
    }

    /// The table in HTML, scrolling sideways when wide.
    pub(super) fn html(&self) -> Markup {
        html! {
            div.scroll { table {
                tr { @for column in &self.columns { @if column.number { th.n { (column.name) } } @else { th { (column.name) } } } }
                @for row in &self.rows { tr { @for cell in row { (cell.html()) } } }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_for_each_page() {
        let mut table = Table::new(vec![text("message"), figures("runs"), text("reproduce")]);
        table.row(vec![
            Cell::Text("a | <b>".into()),
            Cell::Number("1,200".into()),
            Cell::Codes(vec!["scx run x --seed 1".into(), "scx run x --seed 2".into()]),
        ]);
        let mut md = String::new();
        table.markdown(&mut md);
        assert_eq!(
            md,
            "\n| message | runs | reproduce |\n| --- | ---: | --- |\n| a \\| <b> | 1,200 | `scx run x --seed 1`; `scx run x --seed 2` |\n"
        );
        let html = table.html().into_string();
        assert!(html.contains("<td>a | &lt;b&gt;</td><td class=\"n\">1,200</td>"), "{html}");
        assert!(html.contains("<code>scx run x --seed 1</code><br><code>scx run x --seed 2</code>"), "{html}");
    }
}
