// sqlx::migrate! embeds migrations/ at compile time; without this, a new migration file leaves
// cargo with nothing to rebuild and the binary without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
