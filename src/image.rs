//! Image formats of a figure: the SVG that plotters draws, and PNG and PDF rendered
//! from that same SVG (resvg, svg2pdf) with the font shipped in `assets/fonts`
//! (DejaVu Sans), so every machine renders the same text without system fonts.

#[cfg(feature = "figures")]
mod render;
#[cfg(feature = "figures")]
pub use render::{pdf, png, write_all};

/// The print size a figure is drawn for: `column` (3.25 in wide, one column of a
/// two-column paper, legend below the plot), `page` (6.75 in, the full text width, legend
/// beside it) and `slide` (10 in, a 16:9 slide). Text is at least 8 pt at that width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FigureSize {
    Column,
    #[default]
    Page,
    Slide,
}

/// What to write for a figure: its formats, and the size it is drawn for.
#[derive(Debug, Clone, Copy)]
pub struct FigureOutput<'a> {
    pub formats: &'a [ImageFormat],
    pub size: FigureSize,
}

/// A figure's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
    Pdf,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
            Self::Pdf => "pdf",
        }
    }

    /// Parses `svg,png,pdf` (any non-empty subset, without repeats).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let mut formats = Vec::new();
        for part in text.split(',').map(str::trim) {
            let f = match part {
                "svg" => Self::Svg,
                "png" => Self::Png,
                "pdf" => Self::Pdf,
                _ => return Err(format!("unknown figure format `{part}` (svg, png, pdf)")),
            };
            if formats.contains(&f) {
                return Err(format!("figure format `{part}` is given twice"));
            }
            formats.push(f);
        }
        Ok(formats)
    }
}
