//! Row bands (`rows=A-B`) and raw-row re-encoding: the two facts a fan-out's merge rests on,
//! checked byte for byte against one-process renders of the whole image.

use render::encode::{self, header, raw_row_len};
use render::{EngineKind, Format, RenderOptions, RenderRequest, RowBand, render_to_vec};
use std::io::Write;
use std::sync::{Arc, Mutex};

const W: u32 = 37;
const H: u32 = 29;

fn request(engine: EngineKind, format: Format) -> RenderRequest {
    RenderRequest { width: W, height: H, spp: 8, engine, format, seed: 11, ..RenderRequest::default() }
}

fn render(req: &RenderRequest) -> Vec<u8> {
    render_to_vec(req, &RenderOptions::default()).unwrap().0
}

/// The carrier data (P6 or PFM rows, no header) of the whole image.
fn carrier_rows(engine: EngineKind, format: Format) -> Vec<u8> {
    let f = format.carrier();
    let full = render(&request(engine, f));
    full[header(f, W, H).len()..].to_vec()
}

/// What band `b` of the whole image must be, built from the whole image's bytes: its rows,
/// re-encoded under a header of `b.len()` rows.
fn expected_band(engine: EngineKind, format: Format, b: RowBand) -> Vec<u8> {
    let rows = carrier_rows(engine, format);
    let len = raw_row_len(format, W);
    // The carrier stores rows top-down (P6) or bottom-up (PFM): the band is one run either way.
    let (first, last) = match format.row_order() {
        render::RowOrder::TopDown => (b.start, b.end),
        render::RowOrder::BottomUp => (H - b.end, H - b.start),
    };
    reencode(format, b.len(), &rows[first as usize * len..last as usize * len])
}

/// Raw rows through `format`'s encoder.
fn reencode(format: Format, height: u32, rows: &[u8]) -> Vec<u8> {
    let buf = Shared::default();
    let mut enc = encode::encoder(format, W, height, buf.clone()).unwrap();
    for row in rows.chunks_exact(raw_row_len(format, W)) {
        enc.write_raw_row(row).unwrap();
    }
    enc.finish().unwrap();
    buf.take()
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn raw_rows_reencode_to_the_same_bytes_in_every_format() {
    for engine in EngineKind::ALL.iter().copied() {
        for format in Format::ALL.iter().copied() {
            let direct = render(&request(engine, format));
            let via_carrier = reencode(format, H, &carrier_rows(engine, format));
            assert!(direct == via_carrier, "{engine} {format}: re-encoding the carrier changed bytes");
        }
    }
}

#[test]
fn a_band_is_the_same_pixels_as_those_rows_of_the_whole_image() {
    // Odd sizes and boundaries: one row, the first and last rows, a band across the middle.
    let bands = [(0, 1), (0, H), (7, 20), (28, 29), (13, 14), (1, 28)];
    for engine in EngineKind::ALL.iter().copied() {
        for format in Format::ALL.iter().copied() {
            for (start, end) in bands {
                let b = RowBand { start, end };
                let got = render(&RenderRequest { rows: Some(b), ..request(engine, format) });
                assert!(got == expected_band(engine, format, b), "{engine} {format} rows {b}");
            }
        }
    }
}

#[test]
fn bands_of_a_split_concatenate_to_the_whole_image() {
    for engine in EngineKind::ALL.iter().copied() {
        let whole = render(&request(engine, Format::Ppm));
        let mut joined = header(Format::Ppm, W, H).into_bytes();
        for b in (RowBand { start: 0, end: H }).split(5) {
            let part = render(&RenderRequest { rows: Some(b), ..request(engine, Format::Ppm) });
            joined.extend_from_slice(&part[header(Format::Ppm, W, b.len()).len()..]);
        }
        assert!(joined == whole, "{engine}");
    }
}

#[test]
fn a_raw_row_of_the_wrong_length_is_an_error() {
    for format in Format::ALL.iter().copied() {
        let mut enc = encode::encoder(format, W, 1, std::io::sink()).unwrap();
        assert!(enc.write_raw_row(&vec![0; raw_row_len(format, W) + 1]).is_err(), "{format}");
        assert!(enc.write_raw_row(&vec![0; raw_row_len(format, W)]).is_ok(), "{format}");
    }
}
