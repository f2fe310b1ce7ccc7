//! The small amount of HTML the demo's pages share: escaping, the page shell with its styles,
//! and the script that refreshes a page's `#live` section whenever its service announces a
//! change on `/events` (server-sent events), without a reload.

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733;background:#f7f8fa}\
h1{font-size:1.4rem;margin:0 0 .3rem}p.sub{color:#5b6675;margin:0 0 1rem}\
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}\
th,td{border-bottom:1px solid #e3e6ea;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#eef1f5;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;font-size:.8rem;background:#dde3ea}\
.approved{background:#cdeccf}.partial{background:#fdeab8}.denied{background:#f6c9c9}.in_review{background:#dbe6f7}\
.cards{display:flex;gap:.8rem;flex-wrap:wrap;margin:0 0 1rem}.card{background:#fff;border:1px solid #e3e6ea;\
border-radius:.4rem;padding:.5rem .8rem}.card b{display:block;font-size:1.3rem}button{margin:.1rem;cursor:pointer}\
input{width:6rem}input.reason{width:12rem}.line{white-space:nowrap}";

/// Refreshes `#live` from the same URL whenever `/events` says something changed, unless the
/// user is typing inside it.
const LIVE_SCRIPT: &str = "const live=()=>document.getElementById('live');let busy=false;\
async function refresh(){if(busy)return;const a=document.activeElement;if(a&&live().contains(a)&&a.tagName==='INPUT')return;\
busy=true;try{const r=await fetch(location.href,{headers:{'accept':'text/html'}});const d=new DOMParser().parseFromString(await r.text(),'text/html');\
const next=d.getElementById('live');if(next){live().innerHTML=next.innerHTML;document.body.dataset.refreshed=String(Date.now());}}finally{busy=false}}\
new EventSource('/events').onmessage=()=>refresh();";

/// A whole page: `live` is the part that refreshes; `script` adds page-specific behaviour.
pub fn page(title: &str, subtitle: &str, live: &str, script: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
         <body><h1>{title}</h1><p class=\"sub\">{subtitle}</p><div id=\"live\">{live}</div>\
         <script>{LIVE_SCRIPT}{script}</script></body></html>",
        title = escape(title),
        subtitle = subtitle,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_break_out_of_the_markup() {
        assert_eq!(
            escape(r#"<script>"x"&'y'"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
        let html = page("A <b>", "sub", "<p>live</p>", "");
        assert!(html.contains("<title>A &lt;b&gt;</title>"));
        assert!(html.contains("<div id=\"live\"><p>live</p></div>"));
    }
}
