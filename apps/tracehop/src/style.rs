//! ANSI colour for terminals, nothing otherwise.

use std::io::IsTerminal;

use crate::cli::ColorChoice;

/// Colours output when enabled; every method returns the text unchanged otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

/// Colours given to services in order of appearance.
const SERVICE_COLOURS: [&str; 5] = ["36", "35", "33", "34", "32"];

impl Palette {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset (or when forced).
    pub fn for_stdout(choice: ColorChoice) -> Palette {
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Palette { enabled }
    }

    /// True when escapes are written.
    pub fn enabled(self) -> bool {
        self.enabled
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dimmed.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Red, for errors.
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Yellow, for warnings.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Green, for success.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// The colour of the `index`-th service.
    pub fn service(self, index: usize, text: &str) -> String {
        self.paint(SERVICE_COLOURS[index % SERVICE_COLOURS.len()], text)
    }

    /// A level name coloured by severity and padded to `width` columns; the padding goes outside
    /// the colour so that neither the escapes nor the spaces upset the match or the alignment.
    pub fn level_padded(self, level: &str, width: usize) -> String {
        let pad = width.saturating_sub(level.chars().count());
        format!("{}{}", self.level(level), " ".repeat(pad))
    }

    /// A level name coloured by severity.
    pub fn level(self, level: &str) -> String {
        match level {
            "ERROR" | "FATAL" => self.red(level),
            "WARN" => self.yellow(level),
            "DEBUG" | "TRACE" => self.dim(level),
            _ => level.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_levels_keep_their_colour_and_their_width() {
        let colour = Palette { enabled: true };
        assert_eq!(colour.level_padded("WARN", 5), "\x1b[33mWARN\x1b[0m ");
        assert_eq!(colour.level_padded("INFO", 5), "INFO ");
        let plain = Palette { enabled: false };
        assert_eq!(plain.level_padded("ERROR", 5), "ERROR");
        assert_eq!(plain.level_padded("INFORMATION", 5), "INFORMATION");
    }
}
