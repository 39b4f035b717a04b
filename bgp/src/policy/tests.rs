use super::*;
use crate::wire::{AsPath, Origin};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: Vec<PolicyConfig>,
}

fn load(s: &str) -> Result<BTreeMap<String, Arc<Policy>>, String> {
    let f: File = toml::from_str(s).map_err(|e| e.to_string())?;
    compile_all(&f.policy).map_err(|e| e.to_string())
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(vec![65001, 65010])),
        next_hop: Some("192.0.2.1".parse().unwrap()),
        communities: vec![Community::new(65000, 100)],
        ..Default::default()
    }
}

const EXAMPLE: &str = r#"
[[policy]]
name = "from-tor"
default = "reject"

[[policy.rule]]
match.prefix = [{ prefix = "10.244.0.0/16", ge = 24, le = 26 }]
match.community = ["65000:100"]
action = "accept"
set.local_pref = 200
set.add_communities = ["65000:2", "no-export"]
set.remove_communities = ["65000:100"]
set.add_large_communities = ["65000:1:2"]
set.prepend = { asn = 65000, count = 2 }

[[policy.rule]]
match.next_hop = ["198.51.100.0/24"]
action = "next"
set.med = 7

[[policy.rule]]
match.neighbor_as = [65001]
match.family = ["ipv4-unicast"]
match.as_path_contains = [65010]
action = "accept"
"#;

#[test]
fn example_parses_and_evaluates_in_order() {
    let set = load(EXAMPLE).unwrap();
    let p = set.get("from-tor").unwrap();
    assert_eq!(p.rules.len(), 3);
    let fam = Family::IPV4_UNICAST;
    // Rule 0 matches: modifications applied, accepted.
    match p.evaluate(fam, &net("10.244.3.0/24"), &attrs()) {
        PolicyResult::Accept(Some(a)) => {
            assert_eq!(a.local_pref, Some(200));
            assert_eq!(
                a.communities,
                vec![Community::new(65000, 2), Community::NO_EXPORT]
            );
            assert_eq!(a.large_communities.len(), 1);
            assert_eq!(a.as_path.unwrap().path_len(), 4);
        }
        other => panic!("{other:?}"),
    }
    // Length 28 is outside ge/le: rule 0 fails, rule 2 accepts unchanged.
    assert_eq!(
        p.evaluate(fam, &net("10.244.3.0/28"), &attrs()),
        PolicyResult::Accept(None)
    );
    // Different neighbour AS and no other rule: the default rejects.
    let mut a = attrs();
    a.as_path = Some(AsPath::from_sequence(vec![65002]));
    assert_eq!(
        p.evaluate(fam, &net("192.168.0.0/16"), &a),
        PolicyResult::Reject
    );
    // Family condition.
    assert_eq!(
        p.evaluate(Family::IPV6_UNICAST, &net("fd00::/64"), &attrs()),
        PolicyResult::Reject
    );
    // A `next` rule modifies and continues to the accepting rule.
    let mut a = attrs();
    a.next_hop = Some("198.51.100.9".parse().unwrap());
    match p.evaluate(fam, &net("192.168.0.0/16"), &a) {
        PolicyResult::Accept(Some(a)) => assert_eq!(a.med, Some(7)),
        other => panic!("{other:?}"),
    }
    // A `next` rule whose modifications do not lead to accept: default reject wins.
    a.as_path = Some(AsPath::from_sequence(vec![65002]));
    assert_eq!(
        p.evaluate(fam, &net("192.168.0.0/16"), &a),
        PolicyResult::Reject
    );
}

#[test]
fn prefix_range_semantics() {
    let r = |s: &str, ge, le| {
        PrefixRangeConfig {
            prefix: s.into(),
            ge,
            le,
        }
        .compile(&Ctx { policy: "p" }, "f")
        .unwrap()
    };
    let exact = r("10.0.0.0/8", None, None);
    assert!(exact.matches(&net("10.0.0.0/8")));
    assert!(!exact.matches(&net("10.1.0.0/16")));
    let le = r("10.0.0.0/8", None, Some(24));
    assert!(le.matches(&net("10.0.0.0/8")) && le.matches(&net("10.1.2.0/24")));
    assert!(!le.matches(&net("10.1.2.0/25")) && !le.matches(&net("11.0.0.0/8")));
    let ge = r("10.0.0.0/8", Some(16), None);
    assert!(!ge.matches(&net("10.0.0.0/8")) && ge.matches(&net("10.1.2.3/32")));
    let v6 = r("fd00::/8", Some(48), Some(64));
    assert!(v6.matches(&net("fd00:1::/64")) && !v6.matches(&net("10.0.0.0/16")));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "accept"
match.prefix = [{ prefix = "10.0.0.0/8", ge = 16, le = 12 }]"#,
            "rule[0].match.prefix[0].le",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "accept"
match.prefix = [{ prefix = "10.0.0.0/8", ge = 4 }]"#,
            "rule[0].match.prefix[0].ge",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "accept"
[[policy.rule]]
action = "accept"
match.community = ["65000:1", "65000"]"#,
            "rule[1].match.community[1]",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "next"
set.add_large_communities = ["1:2"]"#,
            "rule[0].set.add_large_communities[0]",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "accept"
match.prefix = [{ prefix = "10.0.0.1/8" }]"#,
            "rule[0].match.prefix[0].prefix",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "reject"
set.med = 1"#,
            "rule[0].set",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "accept"
match.family = ["l2vpn"]"#,
            "rule[0].match.family[0]",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy]]
name = "p""#,
            "name",
        ),
        // serde-level errors name the unknown field / bad value.
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "accept"
match.prefixes = []"#,
            "prefixes",
        ),
        (
            r#"[[policy]]
name = "p"
[[policy.rule]]
action = "maybe""#,
            "maybe",
        ),
    ];
    for (text, field) in cases {
        let err = load(text).unwrap_err();
        assert!(err.contains(field), "error {err:?} does not name {field:?}");
    }
}

#[test]
fn large_community_and_set_replace() {
    let set = load(
        r#"[[policy]]
name = "p"
default = "accept"
[[policy.rule]]
match.large_community = ["65000:1:2"]
action = "accept"
set.communities = []
set.large_communities = ["1:2:3"]
"#,
    )
    .unwrap();
    let p = set.get("p").unwrap();
    let mut a = attrs();
    assert_eq!(
        p.evaluate(Family::IPV4_UNICAST, &net("10.0.0.0/8"), &a),
        PolicyResult::Accept(None),
        "no large community: default accept, unchanged"
    );
    a.large_communities
        .push(parse_large_community("65000:1:2").unwrap());
    match p.evaluate(Family::IPV4_UNICAST, &net("10.0.0.0/8"), &a) {
        PolicyResult::Accept(Some(m)) => {
            assert!(m.communities.is_empty());
            assert_eq!(
                m.large_communities,
                vec![parse_large_community("1:2:3").unwrap()]
            );
        }
        other => panic!("{other:?}"),
    }
}
