//! Plain aligned text tables for terminals: a header line and one line per row, columns two
//! spaces apart, each as wide as its widest cell (in characters), text to the left and
//! numbers to the right, no trailing spaces.
//!
//! ```
//! use common::table::Table;
//!
//! let mut t = Table::new(["NAME", "STATUS", "SESSIONS"]).right([2]);
//! t.row(["node-1", "UP", "12"]);
//! t.row(["node-10", "DRAIN", "3"]);
//! assert_eq!(
//!     t.to_string(),
//!     "NAME     STATUS  SESSIONS\n\
//!      node-1   UP            12\n\
//!      node-10  DRAIN          3\n"
//! );
//! ```

use std::fmt;

/// Where a column's cells sit within its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// A table to print (see the module documentation).
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers, every column left-aligned.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        Table {
            align: vec![Align::Left; header.len()],
            header,
            rows: Vec::new(),
        }
    }

    /// Right-aligns the columns at these indices (0 first); others are ignored.
    pub fn right(mut self, columns: impl IntoIterator<Item = usize>) -> Table {
        for c in columns {
            if let Some(a) = self.align.get_mut(c) {
                *a = Align::Right;
            }
        }
        self
    }

    /// Adds a row; missing cells are empty and cells beyond the header are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells
            .into_iter()
            .take(self.header.len())
            .map(Into::into)
            .collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        for cells in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, ((cell, &w), align)) in cells.iter().zip(&widths).zip(&self.align).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = w - cell.chars().count();
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_in_characters() {
        let mut t = Table::new(["NAME", "CITY", "N"]).right([2, 7]);
        t.row(["a", "Zürich", "1"]);
        t.row(["bbbbbb", "", "100"]);
        assert_eq!(
            t.to_string(),
            "NAME    CITY      N\n\
             a       Zürich    1\n\
             bbbbbb          100\n"
        );
    }

    #[test]
    fn short_rows_are_filled_and_long_rows_cut() {
        let mut t = Table::new(["A", "B"]);
        t.row(["x"]);
        t.row(["1", "2", "3"]);
        assert_eq!(t.to_string(), "A  B\nx\n1  2\n");
        assert_eq!(Table::new(["ONLY"]).to_string(), "ONLY\n");
    }
}
