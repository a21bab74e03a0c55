//! Finds duplicated mapping keys in YAML, with the duplicate's own position.
//!
//! YAML forbids duplicate keys, but copies of real documentation carry them
//! (an Ingress with `metadata.name` given twice), and most loaders silently
//! keep the last one. serde_yaml does refuse them, but points at the start of
//! the enclosing mapping, not at the offending line. This pass walks the
//! parser's events and reports the key itself: its line, column, path and
//! where it first appeared.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One duplicated key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateKey {
    /// Dotted path of the mapping holding it (`metadata`), empty at the top.
    pub parent: String,
    /// The key.
    pub key: String,
    /// 1-based line and column of the duplicate (the parser counts columns from 0).
    pub line: usize,
    pub column: usize,
    /// 1-based line of the first occurrence.
    pub first_line: usize,
}

enum Frame {
    Map {
        /// Scalar keys seen so far, with the line they were on.
        keys: HashMap<String, usize>,
        /// Whether the next node in this mapping is a key.
        expecting_key: bool,
        /// The last scalar key, which names the value that follows.
        current_key: Option<String>,
    },
    Seq {
        index: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<(Frame, String)>,
    found: Vec<DuplicateKey>,
}

impl Walker {
    /// Called when a node begins; returns the path the node lives at.
    fn enter_node(&mut self, scalar_key: Option<&str>, mark: Marker) -> Option<String> {
        let (frame, path) = self.stack.last_mut()?;
        match frame {
            Frame::Map {
                keys,
                expecting_key,
                current_key,
            } => {
                let is_key = *expecting_key;
                *expecting_key = !is_key;
                if is_key {
                    *current_key = scalar_key.map(str::to_string);
                    if let Some(k) = scalar_key {
                        if let Some(&first_line) = keys.get(k) {
                            self.found.push(DuplicateKey {
                                parent: path.clone(),
                                key: k.to_string(),
                                line: mark.line(),
                                column: mark.col() + 1,
                                first_line,
                            });
                        } else {
                            keys.insert(k.to_string(), mark.line());
                        }
                    }
                    None
                } else {
                    let key = current_key.clone().unwrap_or_else(|| "?".to_string());
                    Some(join(path, &key))
                }
            }
            Frame::Seq { index } => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                self.enter_node(Some(&value), mark);
            }
            Event::Alias(_) => {
                self.enter_node(None, mark);
            }
            Event::MappingStart(..) => {
                let path = self.enter_node(None, mark).unwrap_or_default();
                self.stack.push((
                    Frame::Map {
                        keys: HashMap::new(),
                        expecting_key: true,
                        current_key: None,
                    },
                    path,
                ));
            }
            Event::SequenceStart(..) => {
                let path = self.enter_node(None, mark).unwrap_or_default();
                self.stack.push((Frame::Seq { index: 0 }, path));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// What one walk over a YAML text found.
#[derive(Debug, Default)]
pub(crate) struct WalkReport {
    /// Every duplicated key.
    pub duplicates: Vec<DuplicateKey>,
    /// The 1-based line where nesting went deeper than allowed; the walk
    /// stopped there.
    pub too_deep: Option<usize>,
    /// Whether this parser found a syntax error (left to the main parser,
    /// which reports it with its position).
    pub syntax_error: bool,
}

/// Walks `text` (one or more YAML documents) event by event: every
/// duplicated key, and whether mappings and sequences nest deeper than
/// `max_depth`. The walk stops at the first node past that depth, so a
/// hostile nesting costs no more than `max_depth` levels of work (YAML
/// scanners spend time per token in proportion to the depth of flow
/// nesting, so an unbounded `[[[[...` is quadratic).
pub(crate) fn walk(text: &str, max_depth: usize) -> WalkReport {
    let mut walker = Walker::default();
    let mut parser = Parser::new_from_str(text);
    let mut report = WalkReport::default();
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, mark)) => {
                walker.on_event(event, mark);
                if walker.stack.len() > max_depth {
                    report.too_deep = Some(mark.line());
                    break;
                }
            }
            Err(_) => {
                report.syntax_error = true;
                break;
            }
        }
    }
    report.duplicates = walker.found;
    report
}

/// Every duplicated key in `text` (see [`walk`]).
#[cfg(test)]
fn find_duplicate_keys(text: &str) -> Vec<DuplicateKey> {
    walk(text, usize::MAX).duplicates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_duplicate_itself() {
        let text =
            "apiVersion: v1\nmetadata:\n  name: a\n  labels:\n    x: y\n  name: b\nspec: {}\n";
        let d = find_duplicate_keys(text);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0],
            DuplicateKey {
                parent: "metadata".into(),
                key: "name".into(),
                line: 6,
                column: 3,
                first_line: 3
            }
        );
    }

    #[test]
    fn same_key_in_sibling_mappings_is_fine() {
        let text = "items:\n- name: a\n  port: 1\n- name: b\n  port: 2\nx: {name: 1, port: 2}\n";
        assert!(find_duplicate_keys(text).is_empty());
    }

    #[test]
    fn nested_paths_are_named() {
        let text = "spec:\n  rules:\n  - host: a\n    host: b\n";
        let d = find_duplicate_keys(text);
        assert_eq!(d[0].parent, "spec.rules[0]");
        assert_eq!(d[0].line, 4);
    }
}
