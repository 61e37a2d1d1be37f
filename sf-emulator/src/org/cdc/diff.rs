//! Long text values in UPDATE events sent as diffs, as Salesforce sends them over CometD
//! (Change Data Capture Developer Guide, "Sending Data Differences for Fields of Updated
//! Records" and "Data Differences in Event Fields"): for large text fields (Description, long
//! text area, rich text area) whose new value has at least 1,000 characters, the field is
//! `{"diff": "--- \n+++ <SHA-256 of the new value>\n@@ -a,b +c,d @@\n-old line\n+new line…"}`,
//! a line-based unified diff without context lines. The full value is sent instead when the
//! value is shorter than 1,000 characters, the lengths differ by more than 50%, more than 25%
//! of the lines changed, or the diff is longer than the new value.

use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::data::schema::{FieldSchema, FieldType, ObjectSchema};
use crate::data::store::Record;
use crate::data::value::Value;

/// Shortest value sent as a diff.
pub const MIN_CHARS: usize = 1_000;
/// Edit distance (in lines) past which no diff is computed (the 25% rule would refuse it).
const MAX_EDITS: usize = 4_000;

/// Large text fields: `textarea` longer than 255 (long text area, rich text area and
/// standard fields such as Description).
pub fn is_large_text(f: &FieldSchema) -> bool {
    f.ftype == FieldType::TextArea && f.length > 255
}

/// Replaces, in an UPDATE payload, each changed large text field whose change qualifies by
/// its diff object.
pub fn apply(
    o: &ObjectSchema,
    old: &Record,
    new: &Record,
    changed: &[usize],
    payload: &mut Map<String, Json>,
) {
    for &i in changed {
        let f = &o.fields[i];
        if !is_large_text(f) {
            continue;
        }
        let (Value::String(before), Value::String(after)) = (old.get(i), new.get(i)) else {
            continue;
        };
        if let Some(diff) = unified_diff(before, after) {
            payload.insert(f.name.clone(), json!({ "diff": diff }));
        }
    }
}

/// One change: old lines `a..a+b` replaced by new lines `c..c+d` (0-based starts).
#[derive(Debug, PartialEq, Eq)]
struct Hunk {
    old_start: usize,
    old_len: usize,
    new_start: usize,
    new_len: usize,
}

/// The diff value for `before` → `after`, or `None` when Salesforce sends the full value.
pub fn unified_diff(before: &str, after: &str) -> Option<String> {
    let new_chars = after.chars().count();
    let old_chars = before.chars().count();
    if new_chars < MIN_CHARS || old_chars == 0 || before == after {
        return None;
    }
    if new_chars.abs_diff(old_chars) * 2 > old_chars {
        return None;
    }
    let old: Vec<&str> = before.split('\n').collect();
    let new: Vec<&str> = after.split('\n').collect();
    let hunks = hunks(&old, &new)?;
    let changed: usize = hunks.iter().map(|h| h.old_len + h.new_len).sum();
    if changed * 4 > old.len() + new.len() {
        return None;
    }
    let mut out = format!("--- \n+++ {:x}", Sha256::digest(after.as_bytes()));
    for h in &hunks {
        // Unified diff numbering: 1-based, an empty range names the line before it.
        let at = |start: usize, len: usize| if len == 0 { start } else { start + 1 };
        out.push_str(&format!(
            "\n@@ -{},{} +{},{} @@",
            at(h.old_start, h.old_len),
            h.old_len,
            at(h.new_start, h.new_len),
            h.new_len
        ));
        for line in &old[h.old_start..h.old_start + h.old_len] {
            out.push_str("\n-");
            out.push_str(line);
        }
        for line in &new[h.new_start..h.new_start + h.new_len] {
            out.push_str("\n+");
            out.push_str(line);
        }
    }
    (out.chars().count() <= new_chars).then_some(out)
}

/// The changed line ranges between `old` and `new` (Myers' shortest edit script), or `None`
/// past `MAX_EDITS` edits.
fn hunks(old: &[&str], new: &[&str]) -> Option<Vec<Hunk>> {
    let (n, m) = (old.len() as isize, new.len() as isize);
    let max = (n + m).min(MAX_EDITS as isize);
    let offset = max + 1;
    let mut v = vec![0isize; 2 * offset as usize + 1];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut found = false;
    'outer: for d in 0..=max {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let idx = (k + offset) as usize;
            let mut x = if k == -d || (k != d && v[idx - 1] < v[idx + 1]) {
                v[idx + 1]
            } else {
                v[idx - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && old[x as usize] == new[y as usize] {
                x += 1;
                y += 1;
            }
            v[idx] = x;
            if x >= n && y >= m {
                found = true;
                break 'outer;
            }
            k += 2;
        }
    }
    if !found {
        return None;
    }
    // Walk back through the trace collecting deleted (old) and inserted (new) line marks.
    let mut deleted = vec![false; old.len()];
    let mut inserted = vec![false; new.len()];
    let (mut x, mut y) = (n, m);
    for d in (1..trace.len() as isize).rev() {
        let v = &trace[d as usize];
        let k = x - y;
        let idx = |k: isize| (k + offset) as usize;
        let prev_k = if k == -d || (k != d && v[idx(k - 1)] < v[idx(k + 1)]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = v[idx(prev_k)];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
        }
        if x == prev_x {
            inserted[(y - 1) as usize] = true;
        } else {
            deleted[(x - 1) as usize] = true;
        }
        x = prev_x;
        y = prev_y;
    }
    // Group marks into hunks: runs of changes between unchanged lines.
    let mut out = Vec::new();
    let (mut i, mut j) = (0usize, 0usize);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && !deleted[i] && !inserted[j] {
            i += 1;
            j += 1;
            continue;
        }
        let (old_start, new_start) = (i, j);
        while i < old.len() && deleted[i] {
            i += 1;
        }
        while j < new.len() && inserted[j] {
            j += 1;
        }
        out.push(Hunk {
            old_start,
            old_len: i - old_start,
            new_start,
            new_len: j - new_start,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: usize, tag: &str) -> Vec<String> {
        (0..lines)
            .map(|i| format!("Line {i} of a long description {tag} with enough words to be long."))
            .collect()
    }

    #[test]
    fn a_changed_line_is_sent_as_a_unified_diff_with_the_new_values_hash() {
        let old = text(40, "");
        let mut new = old.clone();
        new[1] = "Business apps are moving to the cloud.".into();
        new.insert(7, "An added sentence.".into());
        let (old, new) = (old.join("\n"), new.join("\n"));
        let diff = unified_diff(&old, &new).expect("a diff");
        let hash = format!("{:x}", Sha256::digest(new.as_bytes()));
        assert_eq!(
            diff,
            format!(
                "--- \n+++ {hash}\n@@ -2,1 +2,1 @@\n-{}\n+Business apps are moving to the cloud.\n@@ -7,0 +8,1 @@\n+An added sentence.",
                text(40, "")[1]
            )
        );
    }

    #[test]
    fn short_values_and_large_rewrites_are_sent_whole() {
        assert_eq!(unified_diff("short", "shorter"), None);
        let old = text(40, "").join("\n");
        // Every line changed: more than 25% of the lines.
        assert_eq!(unified_diff(&old, &text(40, "v2").join("\n")), None);
        // Half the length: more than 50% length difference is not (the new value is 1,000+).
        let doubled = format!("{old}\n{old}\n{old}");
        assert_eq!(unified_diff(&old, &doubled), None);
        // Deleting one line out of 40 is a diff.
        let mut fewer = text(40, "");
        fewer.remove(39);
        assert!(unified_diff(&old, &fewer.join("\n"))
            .unwrap()
            .ends_with(&format!("@@ -40,1 +39,0 @@\n-{}", text(40, "")[39])));
    }
}
