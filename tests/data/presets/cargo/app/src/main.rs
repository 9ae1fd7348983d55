fn main() {
    let mut v: smallvec::SmallVec<[u64; 4]> = smallvec::SmallVec::new();
    v.push(42);
    let line = itoa_fmt::render(v[0]);
    cfg_if::cfg_if! {
        if #[cfg(unix)] { let os = "unix"; } else { let os = "other"; }
    }
    let at = memchr::memchr(b'2', line.as_bytes());
    println!("{} {} {:?}", line, os, at);
}
