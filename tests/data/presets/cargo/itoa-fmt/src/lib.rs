/// The decimal text of n, then the same as a float.
pub fn render(n: u64) -> String {
    let mut a = itoa::Buffer::new();
    let mut b = ryu::Buffer::new();
    format!("{} {}", a.format(n), b.format(n as f64))
}
