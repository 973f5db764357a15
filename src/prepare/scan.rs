//! Finding a class folder's images as the user's Python does: `Path(dir).glob("*.ext")` and
//! `glob("*.EXT")` for each extension, printed with `str()`, sorted.
//!
//! Their globs on Linux are case-sensitive, do not recurse, and match any directory entry
//! whose name ends in the suffix: hidden files, sub-directories and dangling symlinks
//! included (pathlib's `*` matches a leading dot and does not look at the entry's type). One
//! `read_dir` here does what their eighteen globs do.

use std::io;
use std::path::Path;

/// The extensions their loader accepts; each is matched as written and upper-cased.
pub const EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp",
];

/// Why a class folder gave no list.
#[derive(Debug)]
pub enum ScanError {
    Missing,
    NotADirectory,
    Empty,
    /// A matching name that is not UTF-8 (their JSON writer cannot write it either).
    NotUtf8(String),
    Io(io::Error),
}

/// True when `name` matches one of the globs.
pub fn is_image_name(name: &str) -> bool {
    let Some(dot) = name.rfind('.') else {
        return false;
    };
    let ext = &name[dot + 1..];
    EXTENSIONS
        .iter()
        .any(|e| ext == *e || ext.bytes().eq(e.bytes().map(|b| b.to_ascii_uppercase())))
}

/// The folder's matching paths, as `str(Path(dir) / name)` prints them, in code-point order.
pub fn scan(dir: &str) -> Result<Vec<String>, ScanError> {
    let path = Path::new(dir);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ScanError::Missing),
        Err(e) => return Err(ScanError::Io(e)),
    };
    if !meta.is_dir() {
        return Err(ScanError::NotADirectory);
    }
    let base = pathlib_str(dir);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(ScanError::Io)? {
        let name = entry.map_err(ScanError::Io)?.file_name();
        match name.to_str() {
            Some(n) if is_image_name(n) => out.push(join(&base, n)),
            Some(_) => {}
            None => {
                let lossy = name.to_string_lossy();
                if is_image_name(&lossy) {
                    return Err(ScanError::NotUtf8(lossy.into_owned()));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ScanError::Empty);
    }
    // UTF-8 byte order is code-point order, which is how Python sorts strings.
    out.sort_unstable();
    Ok(out)
}

/// `str(PurePosixPath(p))`: empty and `.` components dropped, repeated and trailing
/// slashes collapsed, `..` kept, exactly two leading slashes kept (POSIX leaves their
/// meaning to the system), `.` for nothing.
pub fn pathlib_str(p: &str) -> String {
    let root = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let s = format!("{root}{}", parts.join("/"));
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// `str(Path(base) / name)` for a normalised `base` and a plain file name.
pub fn join(base: &str, name: &str) -> String {
    match base {
        "." => name.to_owned(),
        b if b.ends_with('/') => format!("{b}{name}"),
        b => format!("{b}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CPython 3.11 printed for `str(Path(p) / "n.png")`.
    #[test]
    fn paths_print_as_pathlib_prints_them() {
        for (p, want) in [
            ("gt/d", "gt/d/n.png"),
            ("./gt//d/", "gt/d/n.png"),
            ("gt/./d", "gt/d/n.png"),
            ("//x/y", "//x/y/n.png"),
            ("///x/y", "/x/y/n.png"),
            ("../gt/d", "../gt/d/n.png"),
            ("gt/d/..", "gt/d/../n.png"),
            (".", "n.png"),
            ("./", "n.png"),
            ("/", "/n.png"),
        ] {
            assert_eq!(join(&pathlib_str(p), "n.png"), want, "{p}");
        }
    }

    #[test]
    fn names_match_the_case_sensitive_globs() {
        for yes in [
            "a.png",
            "a.PNG",
            ".png",
            "x.tar.jpeg",
            "b.TIFF",
            "c.webp",
            ".h.jpg",
        ] {
            assert!(is_image_name(yes), "{yes}");
        }
        for no in [
            "a.Png",
            "a.gif",
            "png",
            "a.png.txt",
            "a.jpg ",
            "a.JPg",
            "a.",
        ] {
            assert!(!is_image_name(no), "{no}");
        }
    }

    /// Hidden files, folders and dangling links named like images are listed, as pathlib's
    /// glob lists them (checked with CPython 3.11 on the same tree).
    #[test]
    fn the_folder_is_listed_as_their_globs_list_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub.png")).unwrap();
        for f in [
            ".h.png", "a.PNG", "b.Png", "c.png", "x.tiff", "y.jpeg", "z.txt",
        ] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        std::os::unix::fs::symlink("nowhere", d.join("broken.jpg")).unwrap();
        let base = d.to_str().unwrap();
        let names: Vec<String> = scan(base)
            .unwrap()
            .into_iter()
            .map(|p| p[base.len() + 1..].to_owned())
            .collect();
        assert_eq!(
            names,
            [
                ".h.png",
                "a.PNG",
                "broken.jpg",
                "c.png",
                "sub.png",
                "x.tiff",
                "y.jpeg"
            ]
        );
        assert!(matches!(
            scan(&format!("{base}/c.png")),
            Err(ScanError::NotADirectory)
        ));
        assert!(matches!(
            scan(&format!("{base}/none")),
            Err(ScanError::Missing)
        ));
        assert!(matches!(
            scan(&format!("{base}/sub.png")),
            Err(ScanError::Empty)
        ));
    }
}
