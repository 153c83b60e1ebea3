//! Text for the terminal, fitted to its width: tables whose cells wrap
//! inside their column, and indented lists whose items wrap under
//! themselves.
//!
//! The width is the terminal's when standard output is one; otherwise
//! `COLUMNS` when set, else [`PIPED_WIDTH`] columns (files and pipes).

/// Columns used when standard output is not a terminal and `COLUMNS` is unset.
pub const PIPED_WIDTH: usize = 100;

/// Narrowest width anything is fitted to.
const MIN_WIDTH: usize = 40;

/// Space between two columns.
const GAP: &str = "  ";

/// The number of columns text on standard output may use.
pub fn width() -> usize {
    tty_width()
        .or_else(|| {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok())
        })
        .unwrap_or(PIPED_WIDTH)
        .max(MIN_WIDTH)
}

#[cfg(unix)]
fn tty_width() -> Option<usize> {
    // SAFETY: isatty and ioctl(TIOCGWINSZ) only read the descriptor's state
    // and write into the zeroed `winsize` owned here.
    unsafe {
        if libc::isatty(libc::STDOUT_FILENO) != 1 {
            return None;
        }
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_col > 0 {
            Some(size.ws_col as usize)
        } else {
            None
        }
    }
}

#[cfg(not(unix))]
fn tty_width() -> Option<usize> {
    None
}

fn len(s: &str) -> usize {
    s.chars().count()
}

/// Splits `text` into lines of at most `width` characters, breaking at
/// spaces, and inside a word only when the word alone is too long.
/// Line breaks in `text` are kept.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let mut word: Vec<char> = word.chars().collect();
            let room = if line.is_empty() {
                width
            } else {
                width.saturating_sub(len(&line) + 1)
            };
            if word.len() > room && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            while word.len() > width {
                // After the last hyphen, comma or colon that fits, else anywhere.
                let cut = word[..width]
                    .iter()
                    .rposition(|c| matches!(c, '-' | ',' | ':'))
                    .map_or(width, |i| i + 1);
                let rest = word.split_off(cut);
                lines.push(word.into_iter().collect());
                word = rest;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.extend(word);
        }
        lines.push(line);
    }
    lines
}

/// `x` with 4 significant digits: `0.2069`, `1.801`, `1234`, `1.235e-5`.
pub fn sig4(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        format!("{x:.3e}")
    } else {
        format!("{x:.*}", (3 - magnitude).max(0) as usize)
    }
}

/// An item of an indented list: `indent` spaces, `marker`, then `text`
/// wrapped so that continuation lines line up under the text.
pub fn list_item(indent: usize, marker: &str, text: &str, width: usize) -> String {
    let lead = indent + len(marker) + 1;
    let body = wrap(text, width.saturating_sub(lead).max(20));
    let mut out = String::new();
    for (i, line) in body.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("{}{marker} {line}\n", " ".repeat(indent)));
        } else {
            out.push_str(&format!("{}{line}\n", " ".repeat(lead)));
        }
    }
    out
}

/// A paragraph wrapped to `width`.
pub fn paragraph(text: &str, width: usize) -> String {
    wrap(text, width).into_iter().map(|l| l + "\n").collect()
}

/// Column widths that fit `width`: natural widths, then the widest column
/// narrowed one character at a time until the row fits or every column is
/// at its floor (its longest word, at most 12 characters, at least 4).
fn fit_columns(header: &[String], rows: &[Vec<String>], width: usize) -> Vec<usize> {
    let cols = header.len();
    let cells = || std::iter::once(header).chain(rows.iter().map(|r| r.as_slice()));
    let mut natural = vec![1usize; cols];
    let mut floor = vec![1usize; cols];
    for r in cells() {
        for (i, c) in r.iter().enumerate().take(cols) {
            for line in c.split('\n') {
                natural[i] = natural[i].max(len(line));
                let word = line.split(' ').map(len).max().unwrap_or(0);
                floor[i] = floor[i].max(word.clamp(4, 12));
            }
        }
    }
    for (f, n) in floor.iter_mut().zip(&natural) {
        *f = (*f).min(*n);
    }
    let room = width.saturating_sub(len(GAP) * cols.saturating_sub(1));
    let mut widths = natural;
    while widths.iter().sum::<usize>() > room {
        let widest = (0..cols)
            .filter(|&i| widths[i] > floor[i])
            .max_by_key(|&i| widths[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    widths
}

/// A table fitted to `width` columns: a header, a rule, and the rows, each
/// cell wrapped inside its column (a `\n` in a cell starts a new line).
/// Columns listed in `right` are right-aligned. When even the narrowest
/// columns do not fit, each row is printed as an indented record of
/// `header: value` lines instead.
pub fn table(header: &[String], rows: &[Vec<String>], right: &[usize], width: usize) -> String {
    let widths = fit_columns(header, rows, width);
    let total = widths.iter().sum::<usize>() + len(GAP) * widths.len().saturating_sub(1);
    if total > width {
        return records(header, rows, width);
    }
    let render = |cells: &[String]| -> String {
        let wrapped: Vec<Vec<String>> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| wrap(cells.get(i).map_or("", |c| c.as_str()), w))
            .collect();
        let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let mut out = String::new();
        for k in 0..height {
            let line: Vec<String> = wrapped
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (lines, &w))| {
                    let text = lines.get(k).map_or("", |s| s.as_str());
                    if right.contains(&i) {
                        format!("{text:>w$}")
                    } else {
                        format!("{text:<w$}")
                    }
                })
                .collect();
            out.push_str(line.join(GAP).trim_end());
            out.push('\n');
        }
        out
    };
    let mut out = render(header);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for r in rows {
        out.push_str(&render(r));
    }
    out
}

/// Each row as `header: value` lines under the row's first cell.
fn records(header: &[String], rows: &[Vec<String>], width: usize) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&paragraph(
            &r.first().cloned().unwrap_or_default().replace('\n', " "),
            width,
        ));
        for (h, c) in header.iter().zip(r).skip(1) {
            let text = format!("{h}: {}", c.replace('\n', " — "));
            out.push_str(&list_item(2, "", &text, width).replacen("   ", "  ", 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn widest(text: &str) -> usize {
        text.lines().map(len).max().unwrap_or(0)
    }

    #[test]
    fn wrap_breaks_at_spaces_and_inside_long_words() {
        assert_eq!(wrap("one two three", 7), s(&["one two", "three"]));
        assert_eq!(wrap("abcdefghij", 4), s(&["abcd", "efgh", "ij"]));
        assert_eq!(
            wrap("depthwise-separable", 12),
            s(&["depthwise-", "separable"])
        );
        assert_eq!(wrap("a\nb", 10), s(&["a", "b"]));
    }

    #[test]
    fn a_wide_table_wraps_inside_its_columns() {
        let header = s(&["model", "reason"]);
        let long = "training makes progress: loss is 0.712 x ln K (< 0.90) and fell 31.2% over the window, while the held-out loss follows it";
        let rows = vec![s(&["resnet:depth=20,width=16", long])];
        let text = table(&header, &rows, &[], 60);
        assert!(widest(&text) <= 60, "{text}");
        assert!(text.lines().count() > 3, "{text}");
        // Nothing is lost.
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(words.contains(&"held-out") && words.contains(&"window,"));
    }

    #[test]
    fn a_table_too_wide_for_any_column_width_becomes_records() {
        let header: Vec<String> = (0..12).map(|i| format!("column number {i}")).collect();
        let rows = vec![(0..12).map(|i| format!("value-{i}-abcdefgh")).collect()];
        let text = table(&header, &rows, &[], 50);
        assert!(widest(&text) <= 50, "{text}");
        assert!(
            text.contains("  column number 3: value-3-abcdefgh"),
            "{text}"
        );
    }

    #[test]
    fn four_significant_digits() {
        assert_eq!(sig4(0.20694448053836823), "0.2069");
        assert_eq!(sig4(1.80091), "1.801");
        assert_eq!(sig4(0.9053), "0.9053");
        assert_eq!(sig4(1234.4), "1234");
        assert_eq!(sig4(1.23456e-5), "1.235e-5");
        assert_eq!(sig4(0.0), "0");
    }

    #[test]
    fn list_items_hang_under_their_text() {
        let text = list_item(2, "-", "aaa bbb ccc ddd eee fff ggg hhh iii jjj kkk", 24);
        assert!(widest(&text) <= 24, "{text}");
        assert!(text.starts_with("  - aaa"));
        assert!(text.lines().nth(1).unwrap().starts_with("    "), "{text}");
    }
}
