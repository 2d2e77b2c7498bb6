//! Embeds the install manifests (`config/` at the workspace root) into the binary for
//! `weir install`: generates `$OUT_DIR/config_files.rs` with one `include_str!` per file.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&path, root, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            println!("cargo:rerun-if-changed={}", path.display());
            let relative = path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, path));
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(std::io::Error::other)?);
    let config = manifest_dir.join("../../config");
    let mut files = Vec::new();
    if config.is_dir() {
        let root = config.canonicalize()?;
        collect(&root, &root, &mut files)?;
    } else {
        // Outside the workspace (a packaged crate) there is nothing to embed; `weir install`
        // then says so.
        println!("cargo:rerun-if-changed={}", config.display());
    }
    let mut code = String::from(
        "/// The files of `config/`: (path relative to `config/`, content).\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for (relative, path) in files {
        writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .map_err(std::io::Error::other)?;
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(std::io::Error::other)?);
    std::fs::write(out.join("config_files.rs"), code)
}
