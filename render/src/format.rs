//! Output formats: each described once, in [`Format::spec`] (name, extension, MIME type, row
//! order, lossless carrier, help). The codecs and size bounds are in [`crate::encode`], one file
//! per format. A leaf.

use std::fmt;

/// Output image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Binary PPM (P6), 8-bit, gamma 2.2.
    Ppm,
    /// ASCII PPM (P3) in smallpt's exact layout.
    P3,
    /// 8-bit RGB PNG.
    Png,
    /// Little-endian f32 PFM of the linear (pre-gamma) values.
    Pfm,
}

/// Which row comes out first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOrder {
    /// The top row first (PPM, PNG).
    TopDown,
    /// The bottom row first (PFM stores rows bottom to top).
    BottomUp,
}

/// Everything about a format but its codec.
#[derive(Clone, Copy, Debug)]
pub struct FormatSpec {
    /// The name used on the command line, in query strings and JSON.
    pub name: &'static str,
    /// The file extension.
    pub extension: &'static str,
    /// The MIME type.
    pub content_type: &'static str,
    /// The order the format stores rows in, and so the order its encoder wants them.
    pub order: RowOrder,
    /// The lossless format whose rows carry this one's information (a fan-out's parts travel in
    /// it): P6 for the 8-bit formats (the quantised bytes), PFM for PFM (the f32 values).
    pub carrier: Format,
    /// One line for help texts and the README.
    pub help: &'static str,
}

impl Format {
    /// Every format, in the order they are documented.
    pub const ALL: &'static [Format] = &[Format::Ppm, Format::P3, Format::Png, Format::Pfm];

    /// The format's description.
    pub const fn spec(self) -> FormatSpec {
        match self {
            Format::Ppm => FormatSpec {
                name: "ppm",
                extension: "ppm",
                content_type: "image/x-portable-pixmap",
                order: RowOrder::TopDown,
                carrier: Format::Ppm,
                help: "binary PPM (P6), 8-bit, gamma 2.2",
            },
            Format::P3 => FormatSpec {
                name: "p3",
                extension: "ppm",
                content_type: "image/x-portable-pixmap",
                order: RowOrder::TopDown,
                carrier: Format::Ppm,
                help: "ASCII PPM (P3) in smallpt's exact layout",
            },
            Format::Png => FormatSpec {
                name: "png",
                extension: "png",
                content_type: "image/png",
                order: RowOrder::TopDown,
                carrier: Format::Ppm,
                help: "8-bit RGB PNG",
            },
            Format::Pfm => FormatSpec {
                name: "pfm",
                extension: "pfm",
                content_type: "image/x-portable-floatmap",
                order: RowOrder::BottomUp,
                carrier: Format::Pfm,
                help: "little-endian f32 PFM of the linear values",
            },
        }
    }

    /// [`FormatSpec::name`].
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// [`FormatSpec::extension`].
    pub fn extension(self) -> &'static str {
        self.spec().extension
    }

    /// The format a file name ending in `.ext` holds, ignoring case: `ppm` is binary PPM (the
    /// first of the two PPMs), `png` and `pfm` theirs; `None` for any other extension.
    pub fn for_extension(ext: &str) -> Option<Format> {
        Format::ALL.iter().copied().find(|f| f.extension().eq_ignore_ascii_case(ext))
    }

    /// [`FormatSpec::content_type`].
    pub fn content_type(self) -> &'static str {
        self.spec().content_type
    }

    /// [`FormatSpec::order`].
    pub fn row_order(self) -> RowOrder {
        self.spec().order
    }

    /// [`FormatSpec::carrier`].
    pub fn carrier(self) -> Format {
        self.spec().carrier
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_names_its_format() {
        for (ext, want) in [
            ("ppm", Some(Format::Ppm)),
            ("PPM", Some(Format::Ppm)),
            ("png", Some(Format::Png)),
            ("Png", Some(Format::Png)),
            ("pfm", Some(Format::Pfm)),
            ("p3", None),
            ("jpg", None),
            ("", None),
        ] {
            assert_eq!(Format::for_extension(ext), want, "{ext:?}");
        }
        for f in Format::ALL {
            assert_eq!(Format::for_extension(f.extension()).map(Format::extension), Some(f.extension()));
        }
    }
}
