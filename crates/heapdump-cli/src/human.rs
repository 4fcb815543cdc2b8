//! Number, size and time formatting for human-readable reports.

use std::io::{self, Write};

/// `1234567` as `1,234,567`.
pub fn count(value: u64) -> String {
    heapdump_inspect::analysis::describe::thousands(value)
}

/// A byte count in binary units: `104 B`, `1.5 KiB`, `12.3 MiB`.
pub fn bytes(value: u64) -> String {
    heapdump_inspect::analysis::describe::human_bytes(value)
}

/// A size-class bound: a power of two in whole binary units (`16 B`,
/// `1 KiB`, `2 MiB`), anything else as [`bytes`].
pub fn size_bound(value: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if value == u64::MAX {
        return "16 EiB".to_owned();
    }
    if !value.is_power_of_two() {
        return bytes(value);
    }
    let unit = (value.trailing_zeros() / 10) as usize;
    let scaled = value >> (unit * 10);
    format!("{scaled} {}", UNITS.get(unit).copied().unwrap_or("B"))
}

/// `n thing` or `n things`.
pub fn plural(value: u64, singular: &str, plural: &str) -> String {
    let noun = if value == 1 { singular } else { plural };
    format!("{} {noun}", count(value))
}

/// Nanoseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss.mmm UTC`.
pub fn utc_time(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let millis = (unix_ns % 1_000_000_000) / 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Narrowest first column of a table (the class or site).
const MIN_LABEL_WIDTH: usize = 28;

/// Widest first column of plain output (piped): a longer label (a long
/// generic type) runs into its row's numbers rather than pushing every
/// row's columns out.
const MAX_LABEL_WIDTH: usize = 72;

/// Narrowest first column when a table is cut to the output's width.
const MIN_CUT_LABEL_WIDTH: usize = 12;

/// Narrowest output width taken from `COLUMNS` or the terminal.
const MIN_OUTPUT_WIDTH: usize = 40;

/// The width text reports fit, in columns: `COLUMNS` when it is exported
/// (a number, at least 40; as `ls` does, also when piped, so a script can
/// ask for a width), else the terminal's when standard output is one;
/// `None` when piped: plain output, tables as wide as their labels (up to
/// 72 columns) and lines never cut.
pub fn output_width() -> Option<usize> {
    // Unit tests print plain, whatever terminal runs them.
    if cfg!(test) {
        return None;
    }
    static WIDTH: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *WIDTH.get_or_init(|| {
        use std::io::IsTerminal;
        let terminal = || {
            std::io::stdout()
                .is_terminal()
                .then(|| console::Term::stdout().size_checked())
                .flatten()
                .map(|(_rows, columns)| usize::from(columns))
        };
        width_from(std::env::var("COLUMNS").ok().as_deref(), terminal)
    })
}

/// [`output_width`] from the value of `COLUMNS` and the terminal's width.
fn width_from(columns: Option<&str>, terminal: impl FnOnce() -> Option<usize>) -> Option<usize> {
    columns
        .and_then(|text| text.trim().parse::<usize>().ok())
        .or_else(terminal)
        .map(|width| width.max(MIN_OUTPUT_WIDTH))
}

/// The width of a table's first column that fits `labels`: at most 72
/// columns in plain output; with an [`output_width`], as wide as the
/// longest label (each row is then cut to the width by [`table_row`]).
pub fn label_width<'a>(labels: impl IntoIterator<Item = &'a str>) -> usize {
    label_width_in(labels, output_width())
}

fn label_width_in<'a>(labels: impl IntoIterator<Item = &'a str>, width: Option<usize>) -> usize {
    let max = width.map_or(MAX_LABEL_WIDTH, |width| width.max(MIN_LABEL_WIDTH));
    labels
        .into_iter()
        .map(|label| label.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .clamp(MIN_LABEL_WIDTH, max)
}

/// One line of a table: `  label` left-aligned in `label_width` columns,
/// then each cell right-aligned in its width. The header is a row with an
/// empty label. With an [`output_width`], the first column shrinks so the
/// row fits it (to 12 columns at least), and a longer label is cut with
/// `…`.
pub fn table_row<S: AsRef<str>>(
    out: &mut dyn Write,
    (label, label_width): (&str, usize),
    cells: &[(S, usize)],
) -> io::Result<()> {
    table_row_in(out, (label, label_width), cells, output_width())
}

fn table_row_in<S: AsRef<str>>(
    out: &mut dyn Write,
    (label, mut label_width): (&str, usize),
    cells: &[(S, usize)],
    width: Option<usize>,
) -> io::Result<()> {
    let mut label = std::borrow::Cow::Borrowed(label);
    if let Some(width) = width {
        let numbers: usize = cells.iter().map(|(_, cell)| cell).sum();
        label_width = label_width
            .min(width.saturating_sub(2 + numbers))
            .max(MIN_CUT_LABEL_WIDTH);
        // One column stays free between the label and the numbers.
        label = std::borrow::Cow::Owned(fit(&label, label_width - 1));
    }
    write!(out, "  {label:<label_width$}")?;
    for (cell, width) in cells {
        write!(out, "{:>width$}", cell.as_ref())?;
    }
    writeln!(out)
}

/// `text` in at most `width` columns (characters): cut with `…` when
/// longer.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A line of text in the [`output_width`]: cut with `…` when longer;
/// whole in plain output.
pub fn fit_line(text: &str) -> std::borrow::Cow<'_, str> {
    match output_width() {
        Some(width) if text.chars().count() > width => std::borrow::Cow::Owned(fit(text, width)),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// A change with its sign: `+1,024`, `-3`.
pub fn signed_count(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "+" };
    format!("{sign}{}", count(value.unsigned_abs()))
}

/// A change of bytes with its sign: `+1.50 KiB`, `-16 B`.
pub fn signed_bytes(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "+" };
    format!("{sign}{}", bytes(value.unsigned_abs()))
}

/// An address as a user types it: `0x1f`, `0X1F`, `31`, with `_` allowed
/// between digits (a clap value parser).
pub fn parse_address(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed
        .map_err(|_| format!("not an address: {text:?} (use hex like 0x55d0c4a3b010, or decimal)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_columns_or_the_terminal() {
        assert_eq!(width_from(Some("120"), || Some(80)), Some(120));
        assert_eq!(width_from(None, || Some(80)), Some(80));
        assert_eq!(width_from(Some("junk"), || Some(90)), Some(90));
        assert_eq!(width_from(Some("10"), || None), Some(MIN_OUTPUT_WIDTH));
        assert_eq!(width_from(None, || None), None, "plain when piped");
    }

    #[test]
    fn tables_fit_the_width() {
        let long = "hash table of (u64, leaky_service::Session, a long generic argument list)";
        let row = |width: Option<usize>| {
            let mut out = Vec::new();
            let label_width = label_width_in([long], width);
            table_row_in(
                &mut out,
                (long, label_width),
                &[("1,000", 12), ("12 KiB", 14)],
                width,
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        // Plain: the label whole, running into the numbers past 72.
        assert!(row(None).contains(long));
        // A narrow terminal: cut to fit, numbers whole.
        let narrow = row(Some(60));
        assert_eq!(narrow.trim_end().chars().count(), 60, "{narrow}");
        assert!(
            narrow.contains("hash table of (u64, leaky_serv… "),
            "{narrow}"
        );
        assert!(narrow.trim_end().ends_with("1,000        12 KiB"));
        // A wide one: the label whole, the columns after it.
        let wide = row(Some(200));
        assert!(wide.contains(&format!("{long}  ")), "{wide}");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(15 << 20), "15.0 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(size_bound(0), "0 B");
        assert_eq!(size_bound(16), "16 B");
        assert_eq!(size_bound(512), "512 B");
        assert_eq!(size_bound(1024), "1 KiB");
        assert_eq!(size_bound(2 << 20), "2 MiB");
        assert_eq!(size_bound(1 << 63), "8 EiB");
        assert_eq!(size_bound(u64::MAX), "16 EiB");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            utc_time(1_700_000_000_123_456_789),
            "2023-11-14 22:13:20.123 UTC"
        );
        assert_eq!(
            utc_time(951_782_400_000_000_000),
            "2000-02-29 00:00:00.000 UTC"
        );
        assert_eq!(plural(1, "object", "objects"), "1 object");
        assert_eq!(plural(2, "object", "objects"), "2 objects");
    }

    #[test]
    fn addresses_in_hex_or_decimal() {
        assert_eq!(parse_address("0x1f"), Ok(31));
        assert_eq!(parse_address("0X1F"), Ok(31));
        assert_eq!(parse_address("31"), Ok(31));
        assert_eq!(parse_address("0x55d0_c4a3"), Ok(0x55d0_c4a3));
        assert!(parse_address("0xzz")
            .unwrap_err()
            .contains("not an address"));
        assert!(parse_address("").is_err());
    }
}
