//! HTML building blocks: escaping (everything that comes from a dump is
//! attacker-controlled: class names, thread names, strings), the page
//! frame with its navigation and style sheet, numbers.

use std::fmt::Write;

use heapdump_inspect::analysis::describe::{human_bytes, thousands};

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for element contents
/// and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a dump's strings may hold any byte) show
            // as the replacement character.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Bytes as `1.5 MiB (1,572,864 B)`-style short text.
pub fn bytes(value: u64) -> String {
    human_bytes(value)
}

/// A count with thousands separators.
pub fn count(value: u64) -> String {
    thousands(value)
}

/// `part` as a percentage of `whole`, one decimal.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".to_owned();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// A link to an object's page, showing `0x…`.
pub fn object_link(address: u64) -> String {
    format!("<a class=\"addr\" href=\"/object/{address:#x}\">{address:#x}</a>")
}

/// The navigation entries: (path, label).
const NAV: [(&str, &str); 9] = [
    ("/", "Overview"),
    ("/classes", "Classes"),
    ("/sites", "Sites"),
    ("/dominators", "Dominators"),
    ("/flame", "Flame"),
    ("/roots", "Roots"),
    ("/unreachable", "Unreachable"),
    ("/waste", "Waste"),
    ("/diff", "Diff"),
];

/// The style sheet, inline (no external resource).
const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#fafafa}
header{background:#243447;color:#fff;padding:8px 16px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header b{font-size:16px}
header a{color:#cfe3ff;text-decoration:none}
header a.on{color:#fff;font-weight:bold;border-bottom:2px solid #fff}
header .dump{margin-left:auto;color:#9fb3c8;font-size:12px}
main{padding:12px 20px;max-width:1400px}
h1{font-size:20px;margin:8px 0 12px}
h2{font-size:16px;margin:18px 0 8px}
table{border-collapse:collapse;background:#fff;margin:6px 0}
th,td{padding:3px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
a{color:#0b5cad}
a.addr,code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#fff;border:1px solid #e3e6ea;padding:8px;overflow-x:auto}
.muted{color:#68717a}
.suspect{background:#fff;border:1px solid #e3e6ea;border-left:4px solid #c0392b;padding:8px 12px;margin:10px 0}
.pager{margin:8px 0}
.pager a,.pager span{margin-right:10px}
ul.tree{list-style:none;padding-left:18px;margin:2px 0}
ul.tree li{margin:2px 0}
button.x{font:inherit;font-size:11px;width:22px;padding:0;cursor:pointer}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0}
dl.kv dt{color:#68717a}
dl.kv dd{margin:0}
.flame{font-size:11.5px;background:#fff;border:1px solid #e3e6ea;padding:4px}
.flame .f{box-sizing:border-box;overflow:hidden;min-width:0}
.flame .f>a{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:2px 4px;margin:1px;border-radius:2px;color:#1d232a;text-decoration:none;height:17px}
.flame .f>a:hover{outline:2px solid #243447}
.flame .c{display:flex}
.bar{display:inline-block;height:9px;background:#e67e22;vertical-align:middle}
"#;

/// A whole page: the navigation (with `active` marked; `Diff` only when
/// `diff`), `title`, and `body` (already HTML).
pub fn page(dump_name: &str, active: &str, diff: bool, title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · heapdump</title><style>{STYLE}</style></head><body><header><b>heapdump</b>",
        escape(title)
    );
    for (path, label) in NAV {
        if path == "/diff" && !diff {
            continue;
        }
        let class = if path == active { " class=\"on\"" } else { "" };
        let _ = write!(out, "<a href=\"{path}\"{class}>{label}</a>");
    }
    let _ = writeln!(
        out,
        "<span class=\"dump\">{}</span></header><main><h1>{}</h1>{body}</main></body></html>",
        escape(dump_name),
        escape(title)
    );
    out
}

/// Links to the previous and next page of a paged list: `base` is the
/// path with its other query parameters (ending in `?` or `&`), `offset`
/// the first row shown, `limit` rows per page, `total` rows in all.
pub fn pager(base: &str, offset: usize, limit: usize, total: usize) -> String {
    let mut out = String::from("<div class=\"pager\">");
    let end = offset.saturating_add(limit).min(total);
    let _ = write!(
        out,
        "<span>{}–{} of {}</span>",
        count(if total == 0 {
            0
        } else {
            (offset.min(total) as u64).saturating_add(1)
        }),
        count(end as u64),
        count(total as u64)
    );
    if offset > 0 {
        let previous = offset.saturating_sub(limit);
        let _ = write!(out, "<a href=\"{base}offset={previous}\">« previous</a>");
    }
    if end < total {
        let _ = write!(out, "<a href=\"{base}offset={end}\">next »</a>");
    }
    out.push_str("</div>");
    out
}

/// A small horizontal bar, `part` of `whole`, at most 120 pixels.
pub fn bar(part: u64, whole: u64) -> String {
    let width = if whole == 0 {
        0
    } else {
        ((part as f64 / whole as f64) * 120.0)
            .round()
            .clamp(0.0, 120.0) as u32
    };
    format!("<span class=\"bar\" style=\"width:{width}px\"></span>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }

    #[test]
    fn pager_links() {
        let html = pager("/classes?sort=count&", 100, 100, 250);
        assert!(html.contains("offset=0"));
        assert!(html.contains("offset=200"));
        assert!(html.contains("101–200 of 250"));
    }
}
