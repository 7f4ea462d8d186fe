//! Checks made before any cloud call: CIDR syntax, subnets inside their
//! VPC and not overlapping each other, availability zones of the stack's region.

use serde_json::Value;

use crate::path::PathSeg;
use crate::providers::{StackIssue, StackView};

/// An IPv4 CIDR block as (network address, prefix length).
pub fn parse_cidr(s: &str) -> Result<(u32, u8), String> {
    let bad = || format!("{s:?} is not an IPv4 CIDR block like \"10.0.0.0/16\"");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let octets: Vec<u8> = ip
        .split('.')
        .map(|o| o.parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if octets.len() != 4 {
        return Err(bad());
    }
    let addr = u32::from_be_bytes([octets[0], octets[1], octets[2], octets[3]]);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if addr & !mask != 0 {
        let net = (addr & mask).to_be_bytes();
        return Err(format!(
            "{s:?} has host bits set; the block is \"{}.{}.{}.{}/{len}\"",
            net[0], net[1], net[2], net[3]
        ));
    }
    Ok((addr, len))
}

fn contains(outer: (u32, u8), inner: (u32, u8)) -> bool {
    let mask = if outer.1 == 0 { 0 } else { u32::MAX << (32 - outer.1) };
    inner.1 >= outer.1 && inner.0 & mask == outer.0
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    contains(a, b) || contains(b, a)
}

/// A field's text when it is known as written: a literal, or an
/// expression of literals only (a for_each key bound in: `${"us-west-2a"}`,
/// `${cidrsubnet("10.0.0.0/16", 8, 1)}`).
fn literal(config: &Value, field: &str) -> Option<String> {
    let v = config.get(field)?;
    let s = v.as_str()?;
    if !s.contains("${") {
        return Some(s.to_string());
    }
    let no_refs = |_: &crate::stack::template::Ref| -> Result<Value, String> { Err("not a literal".into()) };
    crate::stack::template::resolve(v, &no_refs)
        .ok()?
        .as_str()
        .filter(|s| !s.contains(crate::value::UNKNOWN))
        .map(str::to_string)
}

fn issue(address: &str, field: &str, message: String) -> StackIssue {
    StackIssue {
        address: address.to_string(),
        path: vec![PathSeg::Field(field.into())],
        message,
    }
}

fn block_size_ok(len: u8) -> bool {
    (16..=28).contains(&len)
}

/// VPC CIDR syntax and size.
pub fn check_vpcs(view: &StackView<'_>) -> Vec<StackIssue> {
    let mut out = Vec::new();
    for (addr, kind, config) in &view.resources {
        if *kind != "vpc" {
            continue;
        }
        if let Some(c) = literal(config, "cidr") {
            match parse_cidr(&c) {
                Err(e) => out.push(issue(addr, "cidr", e)),
                Ok((_, len)) if !block_size_ok(len) => out.push(issue(
                    addr,
                    "cidr",
                    format!("a VPC block must be between /16 and /28, not /{len}"),
                )),
                Ok(_) => {}
            }
        }
    }
    out
}

/// Subnet CIDR syntax, inside the VPC, no overlaps in one VPC, AZ in region.
pub fn check_subnets(view: &StackView<'_>) -> Vec<StackIssue> {
    let mut out = Vec::new();
    let mut seen: Vec<(&str, String, (u32, u8))> = Vec::new();
    for (addr, kind, config) in &view.resources {
        if *kind != "subnet" {
            continue;
        }
        if let (Some(az), Some(region)) = (literal(config, "availability_zone").as_deref(), view.region) {
            let ok = az.strip_prefix(region).is_some_and(|rest| {
                (rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase()))
                    || (rest.starts_with('-') && rest.len() > 2)
            });
            if !ok {
                out.push(issue(
                    addr,
                    "availability_zone",
                    format!("availability zone {az:?} is not in the stack's region {region:?} (e.g. \"{region}a\")"),
                ));
            }
        }
        let Some(c) = literal(config, "cidr") else { continue };
        let block = match parse_cidr(&c) {
            Ok(b) if block_size_ok(b.1) => b,
            Ok(b) => {
                out.push(issue(
                    addr,
                    "cidr",
                    format!("a subnet block must be between /16 and /28, not /{}", b.1),
                ));
                continue;
            }
            Err(e) => {
                out.push(issue(addr, "cidr", e));
                continue;
            }
        };
        let vpc_ref = config.get("vpc").map(|v| v.to_string()).unwrap_or_default();
        if let Some((vpc_addr, "vpc", vpc_conf)) = config.get("vpc").and_then(|v| view.target_of(v)) {
            if let Some(vc) = literal(vpc_conf, "cidr").and_then(|s| parse_cidr(&s).ok()) {
                if !contains(vc, block) {
                    out.push(issue(
                        addr,
                        "cidr",
                        format!(
                            "{c:?} is not inside {vpc_addr}'s block {:?}",
                            literal(vpc_conf, "cidr").unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        if let Some((other, _, _)) = seen.iter().find(|(_, v, b)| *v == vpc_ref && overlaps(*b, block)) {
            out.push(issue(
                addr,
                "cidr",
                format!("{c:?} overlaps {other}'s block in the same VPC"),
            ));
        }
        seen.push((addr, vpc_ref, block));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.0.0.0/16").unwrap(), (0x0a00_0000, 16));
        assert!(parse_cidr("10.0.0.1/16").unwrap_err().contains("\"10.0.0.0/16\""));
        assert!(parse_cidr("10.0.0/16").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("300.0.0.0/8").is_err());
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = parse_cidr("10.0.0.0/16").unwrap();
        assert!(contains(vpc, parse_cidr("10.0.1.0/24").unwrap()));
        assert!(!contains(vpc, parse_cidr("10.1.0.0/24").unwrap()));
        assert!(overlaps(
            parse_cidr("10.0.0.0/23").unwrap(),
            parse_cidr("10.0.1.0/24").unwrap()
        ));
        assert!(!overlaps(
            parse_cidr("10.0.0.0/24").unwrap(),
            parse_cidr("10.0.1.0/24").unwrap()
        ));
    }
}

/// A resolved `cidr` (variables, locals and functions applied): its syntax
/// and block size, as EC2 judges them, at plan before any call.
pub fn check_cidr_field(config: &Value, what: &str) -> Result<(), crate::providers::SchemaError> {
    let Some(c) = literal(config, "cidr") else {
        return Ok(());
    };
    let at = || vec![PathSeg::Field("cidr".into())];
    match parse_cidr(&c) {
        Err(e) => Err(crate::providers::SchemaError::at(at(), e)),
        Ok((_, len)) if !block_size_ok(len) => Err(crate::providers::SchemaError::at(
            at(),
            format!("a {what} block must be between /16 and /28, not /{len}"),
        )),
        Ok(_) => Ok(()),
    }
}
