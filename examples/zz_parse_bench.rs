use std::time::Instant;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let f = std::fs::File::open(&p).unwrap();
    let m = unsafe { memmap2::Mmap::map(&f).unwrap() };
    let text = std::str::from_utf8(&m).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let s = balance_split::split::Split::parse(text, std::path::Path::new(&p)).unwrap();
        eprintln!("parse {:.3} n={}", t.elapsed().as_secs_f64(), s.train.len());
    }
}
