//! Aligned text tables: a header row and rows, each column as wide as its widest cell,
//! two spaces between columns. Widths count characters, so colour codes added after
//! padding (by [`Style`](super::Style)) do not disturb the alignment.

use super::Style;

/// A table being built; [`Table::render`] lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// One cell: its text, and whether it is a state word to colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    text: String,
    state: bool,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, state: false }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

/// A cell coloured by [`Style::state`] (`running` green, `failed` red...).
pub fn state(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        state: true,
    }
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra ones dropped.
    pub fn row(&mut self, cells: Vec<Cell>) {
        let mut cells = cells;
        cells.resize(
            self.header.len(),
            Cell {
                text: String::new(),
                state: false,
            },
        );
        self.rows.push(cells);
    }

    /// The table as lines (no trailing spaces).
    pub fn render(&self, style: &Style) -> Vec<String> {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(width(&cell.text));
            }
        }
        let line = |cells: Vec<(String, String)>| {
            let mut out = String::new();
            for (i, (plain, shown)) in cells.into_iter().enumerate() {
                out.push_str(&shown);
                if i + 1 < columns {
                    out.push_str(&" ".repeat(widths[i] - width(&plain) + 2));
                }
            }
            out.trim_end().to_string()
        };
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        lines.push(line(
            self.header
                .iter()
                .map(|h| (h.clone(), style.bold(h)))
                .collect(),
        ));
        for row in &self.rows {
            lines.push(line(
                row.iter()
                    .map(|cell| {
                        let shown = if cell.state {
                            style.state(&cell.text)
                        } else {
                            cell.text.clone()
                        };
                        (cell.text.clone(), shown)
                    })
                    .collect(),
            ));
        }
        lines
    }

    /// Prints the table on stdout.
    pub fn print(&self, style: &Style) {
        for line in self.render(style) {
            println!("{line}");
        }
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// `cells![a, b, state(c)]`: a row of cells from anything that converts.
#[macro_export]
macro_rules! cells {
    ($($cell:expr),* $(,)?) => {
        vec![$($crate::output::table::Cell::from($cell)),*]
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Style = Style {
        tty: false,
        colour: false,
    };

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut table = Table::new(["ID", "STATUS", "NODE"]);
        table.row(cells!["web-0-1a2b3c4d", state("running"), "node-1"]);
        table.row(cells!["db", state("failed"), "é"]);
        assert_eq!(
            table.render(&PLAIN),
            vec![
                "ID              STATUS   NODE",
                "web-0-1a2b3c4d  running  node-1",
                "db              failed   é",
            ]
        );
    }

    #[test]
    fn colour_codes_do_not_shift_columns() {
        let style = Style {
            tty: true,
            colour: true,
        };
        let mut table = Table::new(["A", "B"]);
        table.row(cells![state("failed"), "x"]);
        let lines = table.render(&style);
        assert_eq!(lines[1], "\x1b[31mfailed\x1b[0m  x");
        assert_eq!(lines[0], "\x1b[1mA\x1b[0m       \x1b[1mB\x1b[0m");
    }

    #[test]
    fn short_rows_are_padded_and_trailing_blanks_trimmed() {
        let mut table = Table::new(["A", "B"]);
        table.row(cells!["x"]);
        assert_eq!(table.render(&PLAIN), vec!["A  B", "x"]);
    }
}
