//! What the stack and the providers share about config values: a path into
//! a value (`PathSeg`, as errors point at fields) and the "did you mean"
//! suggestion for a mistyped name. Neither layer owns these.

use std::fmt;

/// One step of a path into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Field(String),
    Index(usize),
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Field(s) => write!(f, ".{s}"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Convert a serde_path_to_error path into our segments.
pub fn path_segments(path: &serde_path_to_error::Path) -> Vec<PathSeg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(PathSeg::Index(*index)),
            Segment::Map { key } => Some(PathSeg::Field(key.clone())),
            Segment::Enum { variant } => Some(PathSeg::Field(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        if d <= (word.len().max(c.len()) / 3).max(2) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("inptu", ["input", "replace_on_change"]), Some("input"));
        assert_eq!(did_you_mean("zzz", ["input", "replace_on_change"]), None);
        assert_eq!(did_you_mean("image_tga", ["image_tag", "env"]), Some("image_tag"));
    }
}
