//! Prints every CRD as YAML (the same text `cargo xtask crds` writes).
fn main() -> Result<(), serde_yaml::Error> {
    for (_, yaml) in weir_api::crds::rendered()? {
        print!("{yaml}");
    }
    Ok(())
}
