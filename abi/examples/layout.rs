//! Prints the layout table of every on-disk structure of the format.
//!
//! `cargo run -p xsplice-abi --example layout`

use xsplice_abi::layout;

fn main() {
    for l in layout::all() {
        println!("{} ({} bytes): {}", l.c_name, l.size, l.doc);
        println!(
            "  {:>4}  {:>4}  {:<14} {:<9} {:<6} doc",
            "off", "size", "field", "type", "since"
        );
        for f in l.fields {
            println!(
                "  {:>4}  {:>4}  {:<14} {:<9} {:<6} {}",
                f.offset,
                f.size,
                f.name,
                format!("{:?}", f.ty),
                f.since.to_string(),
                f.doc
            );
        }
        println!();
    }
}
