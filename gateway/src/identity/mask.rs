//! Masking of personal data for display (officer lists, SMS recipients) and logs.
//!
//! Contract: every function works on characters, never bytes, never panics,
//! and never returns more of the input than stated:
//! - [`mask_name`]: one char → `*`; two chars → first + `*` (张*); longer →
//!   first + one `*` per middle char + last (张*三, 欧**娜).
//! - [`mask_phone`]: first 3 + `*` per hidden char + last 4 (138****1234);
//!   inputs of 7 chars or fewer are fully starred.
//! - [`mask_id_number`]: first 3 + `*` per hidden char + last 2
//!   (110*************2X); inputs of 5 chars or fewer are fully starred.
//!
//! The output has as many characters as the input (the length of a name is
//! thus visible, as on the national e-tax pages).

/// Keeps the first `head` and last `tail` chars, stars the rest; if the input
/// is not longer than `head + tail`, stars everything.
fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let n = s.chars().count();
    if n <= head + tail {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { c } else { '*' })
        .collect()
}

/// 张三 → 张*, 张小三 → 张*三, 欧阳娜娜 → 欧**娜.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    match name.chars().count() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => name.chars().take(1).chain(std::iter::once('*')).collect(),
        _ => keep_ends(name, 1, 1),
    }
}

/// 13800001234 → 138****1234.
pub fn mask_phone(phone: &str) -> String {
    keep_ends(phone.trim(), 3, 4)
}

/// 11010519491231002X → 110*************2X.
pub fn mask_id_number(id: &str) -> String {
    keep_ends(id.trim(), 3, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张小三"), "张*三");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_name("王"), "*");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("买买提·艾力"), "买****力");
    }

    #[test]
    fn phones() {
        assert_eq!(mask_phone("13800001234"), "138****1234");
        assert_eq!(mask_phone("1234567"), "*******");
        assert_eq!(mask_phone("12345678"), "123*5678");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn id_numbers() {
        assert_eq!(mask_id_number("11010519491231002X"), "110*************2X");
        assert_eq!(mask_id_number("360426199101010071"), "360*************71");
        assert_eq!(mask_id_number("12345"), "*****");
        assert_eq!(mask_id_number("中文字符串测试"), "中文字**测试");
    }
}
