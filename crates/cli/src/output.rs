//! Tables, ages, colours and machine-readable output.

use std::{fmt::Write as _, io::IsTerminal};

use k8s_openapi::jiff::Timestamp;

/// `-o`: how `get` prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table, as kubectl and flux print.
    Table,
    /// The objects as a YAML `List`.
    Yaml,
    /// The objects as a JSON `List`.
    Json,
}

/// Whether to colour output: only on a terminal, and never with `NO_COLOR` set.
pub fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// ANSI styles, or nothing when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    on: bool,
}

impl Palette {
    /// A palette that colours when `on`.
    pub fn new(on: bool) -> Self {
        Palette { on }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Green.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Red.
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Yellow.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Cyan (diff hunk headers).
    pub fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }

    /// Bold.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// A readiness value coloured by meaning.
    pub fn ready(&self, value: &str) -> String {
        match value {
            "True" => self.green(value),
            "False" => self.red(value),
            _ => self.yellow(value),
        }
    }
}

/// Lays out rows under a header as kubectl does: columns left-aligned, three spaces apart, no
/// trailing spaces. Cells may carry ANSI colour; widths count only visible characters.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| visible_len(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(visible_len(cell));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            line.push_str(cell);
            if i + 1 < columns {
                line.push_str(&" ".repeat(widths[i] - visible_len(cell) + 3));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The printed width of `text`, ignoring ANSI escape sequences.
pub fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

/// An age as kubectl prints it (`5s`, `3m20s`, `4h`, `2d`) from `since` to `now`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second() - since.as_second();
    human_duration(seconds)
}

/// kubectl's human duration of `seconds`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

/// Shortens a long status message for a table cell (full text with `-o yaml`).
pub fn truncate(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_like_kubectl() {
        for (s, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 600, "3h10m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (9 * 86400, "9d"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}s");
        }
    }

    #[test]
    fn tables_align_visible_text() {
        let p = Palette::new(true);
        let t = table(
            &["NAME", "READY", "STATUS"],
            &[
                vec!["a".into(), p.ready("True"), "ok".into()],
                vec!["longer".into(), p.ready("False"), String::new()],
            ],
        );
        let plain: String = t
            .replace("\x1b[32m", "")
            .replace("\x1b[31m", "")
            .replace("\x1b[0m", "");
        assert_eq!(
            plain,
            "NAME     READY   STATUS\na        True    ok\nlonger   False\n"
        );
    }

    #[test]
    fn messages_are_one_line_and_bounded() {
        assert_eq!(truncate("a\n  b", 10), "a b");
        assert_eq!(truncate("abcdefghijkl", 5), "abcd…");
    }
}
