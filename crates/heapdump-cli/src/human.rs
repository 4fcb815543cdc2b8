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

/// Widest first column: a longer label (a long generic type) runs into its
/// row's numbers rather than pushing every row's columns out.
const MAX_LABEL_WIDTH: usize = 72;

/// The width of a table's first column that fits `labels`.
pub fn label_width<'a>(labels: impl IntoIterator<Item = &'a str>) -> usize {
    labels
        .into_iter()
        .map(|label| label.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .clamp(MIN_LABEL_WIDTH, MAX_LABEL_WIDTH)
}

/// One line of a table: `  label` left-aligned in `label_width` columns,
/// then each cell right-aligned in its width. The header is a row with an
/// empty label.
pub fn table_row<S: AsRef<str>>(
    out: &mut dyn Write,
    (label, label_width): (&str, usize),
    cells: &[(S, usize)],
) -> io::Result<()> {
    write!(out, "  {label:<label_width$}")?;
    for (cell, width) in cells {
        write!(out, "{:>width$}", cell.as_ref())?;
    }
    writeln!(out)
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
