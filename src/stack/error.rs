//! Stack errors: what is wrong, where (file:line:column), and what to do.

use std::fmt;

use super::source::Location;

/// One problem found in a stack.
#[derive(Debug, Clone)]
pub struct StackError {
    pub location: Option<Location>,
    pub message: String,
    pub help: Option<String>,
}

impl StackError {
    pub fn new(location: Option<Location>, message: impl Into<String>) -> Self {
        StackError {
            location,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => {
                writeln!(f, "{loc}: error: {}", self.message)?;
                let num = loc.line.to_string();
                let gutter = " ".repeat(num.len());
                writeln!(f, "{gutter} |")?;
                writeln!(f, "{num} | {}", loc.line_text)?;
                let lead: String = loc
                    .line_text
                    .chars()
                    .take(loc.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let rest = loc.line_text.chars().count().saturating_sub(loc.column - 1).max(1);
                write!(f, "{gutter} | {lead}{}", "^".repeat(loc.width.min(rest)))?;
            }
            None => write!(f, "error: {}", self.message)?,
        }
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one pass over a stack, in file order.
#[derive(Debug, Clone)]
pub struct StackErrors(pub Vec<StackError>);

impl fmt::Display for StackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackErrors {}

impl From<StackError> for StackErrors {
    fn from(e: StackError) -> Self {
        StackErrors(vec![e])
    }
}
