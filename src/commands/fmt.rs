//! `slipway fmt [--check] [PATH...]`: rewrite stack files in the canonical
//! layout, that of taplo's formatter with its default options (what `taplo
//! fmt` and the Even Better TOML editor extension write), so a stack
//! formatted in an editor and one formatted here agree. A directory means
//! every `.toml` file under it. A file that does not parse is reported with
//! its line and column and left alone; a file is only rewritten when the
//! formatted text reads back as the same values.

use std::path::{Path, PathBuf};

use super::{CmdError, Exit};

/// The canonical text of one TOML file, or where it does not parse.
pub fn format_text(text: &str) -> Result<String, String> {
    let before: toml::Table = toml::from_str(text).map_err(|e| located(text, &e))?;
    let formatted = taplo::formatter::format(text, taplo::formatter::Options::default());
    // The formatter only moves whitespace and commas; never write a file
    // whose meaning it changed.
    match toml::from_str::<toml::Table>(&formatted) {
        Ok(after) if after == before => Ok(formatted),
        _ => Err("the formatter would change what this file means; it was left alone".into()),
    }
}

fn located(text: &str, e: &toml::de::Error) -> String {
    let message = e.message();
    match e.span() {
        Some(span) => {
            let file = crate::stack::source::SourceFile::new(Default::default(), text.to_string());
            let (line, col) = file.line_col(span.start);
            format!("{line}:{col}: {message}")
        }
        None => message.to_string(),
    }
}

/// Every `.toml` file under `path` (or `path` itself), in a stable order.
/// Build outputs and hidden folders are skipped.
fn toml_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            toml_files(&p, out)?;
        } else if name.ends_with(".toml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Write `text` over `path` whole or not at all (a temporary file renamed
/// over it), keeping its permissions.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.fmt.{}", std::process::id()));
    let r = std::fs::write(&tmp, text)
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::metadata(path)?.permissions()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Format the files; with `check`, change nothing and exit 1 when a file
/// is not in the canonical layout (for CI), listing them.
pub fn run(paths: &[PathBuf], check: bool) -> Exit {
    // Without paths: the repository's stacks and modules (so Cargo.toml or
    // another tool's TOML in the working directory is never rewritten).
    let paths = if paths.is_empty() {
        let found: Vec<PathBuf> = ["stacks", "modules"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
        if found.is_empty() {
            return Err(CmdError::Other(
                "no stacks/ or modules/ here: name the files or directories to format".into(),
            ));
        }
        found
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for p in &paths {
        toml_files(p, &mut files).map_err(|e| CmdError::Other(format!("{}: {e}", p.display())))?;
    }
    let (mut unformatted, mut broken) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| CmdError::Other(format!("{}: {e}", f.display())))?;
        match format_text(&text) {
            Err(e) => {
                broken += 1;
                eprintln!("error: {}:{e}", f.display());
            }
            Ok(formatted) if formatted == text => {}
            Ok(formatted) => {
                unformatted += 1;
                if check {
                    println!("{}", f.display());
                } else {
                    replace(f, &formatted).map_err(|e| CmdError::Other(format!("{}: {e}", f.display())))?;
                    println!("{}", f.display());
                }
            }
        }
    }
    if broken > 0 {
        return Err(CmdError::Other(format!(
            "{broken} file(s) do not parse; nothing was written to them"
        )));
    }
    if check && unformatted > 0 {
        eprintln!("{unformatted} file(s) need `slipway fmt`");
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_canonically_keeps_meaning_and_locates_errors() {
        let messy = "[vpc.main]\ncidr   =  \"10.0.0.0/16\"\ntags={Team=\"web\"}\n";
        let f = format_text(messy).unwrap();
        assert_eq!(f, "[vpc.main]\ncidr = \"10.0.0.0/16\"\ntags = { Team = \"web\" }\n");
        assert_eq!(format_text(&f).unwrap(), f, "formatting is idempotent");
        let e = format_text("[vpc.main]\ncidr = \n").unwrap_err();
        assert!(e.starts_with("2:"), "{e}");
    }
}
