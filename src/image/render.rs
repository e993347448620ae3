//! PNG and PDF from a figure's SVG (resvg, svg2pdf) with the bundled font.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use super::ImageFormat;

/// The bundled font: Greek, sub- and superscripts, ‖ and the other symbols the labels use.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FONT_FAMILY: &str = "DejaVu Sans";

/// PNG pixels per SVG unit: the drawing has 96 units per inch at print size, so 3.125
/// gives a 300 dpi PNG.
const PNG_SCALE: f32 = 3.125;

fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family(FONT_FAMILY);
        db.set_serif_family(FONT_FAMILY);
        Arc::new(db)
    })
    .clone()
}

fn tree(svg: &str) -> Result<usvg::Tree, String> {
    let options = usvg::Options { font_family: FONT_FAMILY.into(), fontdb: fonts(), ..usvg::Options::default() };
    usvg::Tree::from_str(svg, &options).map_err(|e| format!("the figure's SVG does not parse: {e}"))
}

/// The SVG rendered to PNG at [`PNG_SCALE`] pixels per unit.
pub fn png(svg: &str) -> Result<Vec<u8>, String> {
    let tree = tree(svg)?;
    let size = tree.size().to_int_size().scale_by(PNG_SCALE).ok_or("the figure has no size")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("the figure is too large")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| format!("PNG encoding: {e}"))
}

/// SVG units per inch at print size (plot draws figures at their print size in these).
const UNITS_PER_INCH: f32 = 96.0;

/// The SVG as a one-page PDF at print size with the font embedded (vector, for LaTeX).
pub fn pdf(svg: &str) -> Result<Vec<u8>, String> {
    let tree = tree(svg)?;
    svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), svg2pdf::PageOptions { dpi: UNITS_PER_INCH })
        .map_err(|e| format!("PDF conversion: {e}"))
}

/// Writes `stem.svg`, `stem.png`, `stem.pdf` (those asked for) from one SVG, each
/// atomically; returns the paths written.
pub fn write_all(svg: &str, stem: &Path, formats: &[ImageFormat]) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for &f in formats {
        let path = stem.with_extension(f.extension());
        let bytes = match f {
            ImageFormat::Svg => svg.as_bytes().to_vec(),
            ImageFormat::Png => png(svg)?,
            ImageFormat::Pdf => pdf(svg)?,
        };
        crate::output::write_bytes(&path, &[], &bytes).map_err(|e| e.to_string())?;
        written.push(path);
    }
    Ok(written)
}
