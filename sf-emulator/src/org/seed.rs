//! Deterministic, realistic data generation by seed: company and person names, picklist values
//! from the describe, phones, emails, websites, addresses, numbers within precision, dates,
//! unique external IDs, and references to already-seeded parents. Loads through
//! `Store::insert_many` (no validation, no CDC), fast enough for 1,000,000 Accounts.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::ids::SfId;
use crate::data::schema::{FieldSchema, FieldType, ObjectSchema};
use crate::data::store::Record;
use crate::data::value::{date_of_ms, Value};
use crate::org::Org;

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Wei",
    "Aiko",
    "Luis",
    "Amara",
    "Ingrid",
    "Rahul",
    "Fatima",
    "Olga",
    "Kwame",
    "Sofia",
    "Mateo",
    "Chloé",
    "Björn",
    "Zoë",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Nguyen",
    "Okafor",
    "Kowalski",
    "Tanaka",
    "Müller",
    "O'Brien",
    "Dubois",
    "Rossi",
    "Silva",
    "Novak",
    "Haddad",
];
const CO_A: &[&str] = &[
    "Acme",
    "Global",
    "Pinnacle",
    "Blue",
    "Summit",
    "Northern",
    "Bright",
    "Silver",
    "Red Rock",
    "Evergreen",
    "Quantum",
    "Atlas",
    "Harbor",
    "Vertex",
    "Golden",
    "Cedar",
    "Iron",
    "Crystal",
    "Prairie",
    "Coastal",
    "Union",
    "Apex",
    "Falcon",
    "Orchid",
];
const CO_B: &[&str] = &[
    "Systems",
    "Logistics",
    "Foods",
    "Energy",
    "Labs",
    "Partners",
    "Health",
    "Media",
    "Motors",
    "Textiles",
    "Analytics",
    "Robotics",
    "Farms",
    "Capital",
    "Outfitters",
    "Pharma",
    "Networks",
    "Builders",
    "Airways",
    "Studios",
];
const CO_C: &[&str] = &[
    "Inc.", "LLC", "Ltd.", "Corp.", "Group", "GmbH", "S.A.", "plc", "Co.",
];
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("San Francisco", "CA", "USA", "94105"),
    ("New York", "NY", "USA", "10001"),
    ("Austin", "TX", "USA", "73301"),
    ("Chicago", "IL", "USA", "60601"),
    ("Seattle", "WA", "USA", "98101"),
    ("Boston", "MA", "USA", "02108"),
    ("Denver", "CO", "USA", "80202"),
    ("Atlanta", "GA", "USA", "30301"),
    ("Toronto", "ON", "Canada", "M5H 2N2"),
    ("London", "", "United Kingdom", "EC1A 1BB"),
    ("Paris", "", "France", "75001"),
    ("Berlin", "", "Germany", "10115"),
    ("Tokyo", "", "Japan", "100-0001"),
    ("Sydney", "NSW", "Australia", "2000"),
    ("São Paulo", "SP", "Brazil", "01000-000"),
];
const STREETS: &[&str] = &[
    "Market St",
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Pine St",
    "Cedar Ln",
    "Elm St",
    "Lake Shore Dr",
    "Broadway",
    "Mission St",
    "High St",
    "King St",
];
const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "VP Sales",
    "Director of IT",
    "Buyer",
    "Engineer",
    "Account Manager",
    "Operations Manager",
    "Analyst",
    "Office Manager",
];
const WORDS: &[&str] = &[
    "renewal",
    "expansion",
    "pilot",
    "upgrade",
    "migration",
    "support",
    "rollout",
    "audit",
    "integration",
    "license",
    "training",
    "onboarding",
];

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// Seed number of a data-set name: a number as is, a name hashed (FNV-1a).
pub fn seed_number(name: &str) -> u64 {
    if let Ok(n) = name.parse::<u64>() {
        return n;
    }
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// `--seed <name|number>`: a small demo data set across the org's objects (parents first).
pub fn seed_named(org: &Org, name: &str) -> Result<(), String> {
    let seed = seed_number(name);
    let plan: &[(&str, usize)] = &[
        ("Account", 200),
        ("Contact", 400),
        ("Opportunity", 300),
        ("Lead", 200),
        ("Case", 200),
    ];
    let mut done = Vec::new();
    for (obj, n) in plan {
        if org.schema().object(obj).is_some() {
            seed_object(org, obj, *n, seed)?;
            done.push(obj.to_ascii_lowercase());
        }
    }
    let schema = org.schema().clone();
    let mut others: Vec<&ObjectSchema> = schema
        .objects
        .iter()
        .map(|o| &**o)
        .filter(|o| !done.contains(&o.name.to_ascii_lowercase()))
        .collect();
    // Masters before their details (a detail record needs a master to point to), whatever the
    // order the describes were loaded in.
    while !others.is_empty() {
        let next = others
            .iter()
            .position(|o| {
                required_parents(o).all(|p| {
                    p.eq_ignore_ascii_case(&o.name)
                        || !others.iter().any(|w| w.name.eq_ignore_ascii_case(p))
                })
            })
            .unwrap_or(0);
        let o = others.remove(next);
        seed_object(org, &o.name, 100, seed)?;
    }
    Ok(())
}

/// The objects a record of `o` must point to (required, createable references).
fn required_parents(o: &ObjectSchema) -> impl Iterator<Item = &str> {
    o.fields
        .iter()
        .filter(|f| {
            f.ftype == FieldType::Reference && f.createable && !f.nillable && !f.defaulted_on_create
        })
        .flat_map(|f| f.reference_to.iter().map(String::as_str))
}

/// Appends `count` generated records of `object` (deterministic for a given `seed`, object
/// and existing data). Returns their Ids.
pub fn seed_object(org: &Org, object: &str, count: usize, seed: u64) -> Result<Vec<SfId>, String> {
    let schema = org.schema().clone();
    let oi = schema
        .object_index(object)
        .ok_or_else(|| format!("sObject type '{object}' is not supported."))?;
    let o = schema.objects[oi].clone();
    let now = org.stamp_ms();
    let user = Value::String(org.user_id().as_str().into());
    // Reference targets: live ids of already-seeded parent objects (sampled, capped).
    let mut parents: Vec<(usize, bool, Vec<SfId>)> = Vec::new();
    {
        let st = org.read();
        for (i, f) in o.fields.iter().enumerate() {
            if f.ftype != FieldType::Reference || !f.createable {
                continue;
            }
            let required = !f.nillable && !f.defaulted_on_create;
            let Some(target) = f.reference_to.iter().find_map(|t| schema.object_index(t)) else {
                continue;
            };
            if target == oi {
                continue;
            }
            let t = st.table(target);
            let ids: Vec<SfId> = t
                .iter()
                .filter(|(_, r)| !t.is_deleted(r))
                .map(|(id, _)| id)
                .take(100_000)
                .collect();
            if ids.is_empty() {
                if required {
                    return Err(format!(
                        "{}.{} requires {} records: seed {} first",
                        o.name, f.name, schema.objects[target].name, schema.objects[target].name
                    ));
                }
                continue;
            }
            parents.push((i, required, ids));
        }
    }
    let start_n = org.read().table(oi).total_count() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ seed_number(&o.name));
    let plan = FieldPlan::new(&o);
    let defaults = crate::org::write::defaults(&o);
    let mut records = Vec::with_capacity(count);
    for k in 0..count as u64 {
        let n = start_n + k;
        let mut r = defaults.clone();
        r.reserve_exact(plan.gens.len() + parents.len() + 8);
        plan.fill(&o, &mut rng, &mut r, n, seed, now);
        for (i, required, ids) in &parents {
            if *required || rng.random_bool(0.9) {
                let id = ids[rng.random_range(0..ids.len())];
                r.set(*i, Value::String(id.as_str().into()));
            }
        }
        let s = &o.sys;
        // Created some time in the last two years, modified since.
        let created =
            now - rng.random_range(0..730i64) * 86_400_000 - rng.random_range(0..86_400i64) * 1000;
        let modified = created + rng.random_range(0..=(now - created) / 1000) * 1000;
        for (pos, v) in [
            (s.created_date, Value::DateTime(created)),
            (s.last_modified_date, Value::DateTime(modified)),
            (s.system_modstamp, Value::DateTime(modified)),
            (s.created_by_id, user.clone()),
            (s.last_modified_by_id, user.clone()),
            (s.owner_id, user.clone()),
            (s.is_deleted, Value::Bool(false)),
        ] {
            if let Some(i) = pos {
                r.set(i, v);
            }
        }
        crate::org::write::derive(&o, &mut r);
        records.push(r);
    }
    let has_auto = o.fields.iter().any(|f| f.auto_number);
    let mut st = org.store_mut();
    if has_auto {
        // Auto numbers follow the Ids the table assigns.
        let t = st.table_mut(oi);
        for r in records.iter_mut() {
            let id = t.next_id();
            r.set(o.sys.id, Value::String(id.as_str().into()));
            crate::org::write::set_auto_numbers(&o, r, id);
        }
    }
    Ok(st.insert_many(oi, records))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Gen {
    Company,
    First,
    Last,
    FullName,
    Email,
    Phone,
    Website,
    Street,
    City,
    State,
    Country,
    Postal,
    Title,
    Subject,
    Picklist,
    Bool,
    Number,
    Date,
    DateTime,
    ExternalId,
    Text,
}

struct FieldPlan {
    gens: Vec<(usize, Gen)>,
    /// Shared strings (one allocation per distinct value across all seeded records).
    cities: Vec<[Value; 4]>,
    first: Vec<Value>,
    last: Vec<Value>,
    titles: Vec<Value>,
    picklists: Vec<Vec<Value>>,
}

fn shared(list: &[&str]) -> Vec<Value> {
    list.iter().map(|s| Value::str(s)).collect()
}

fn classify(o: &ObjectSchema, i: usize, f: &FieldSchema) -> Option<Gen> {
    if !f.createable || f.calculated || f.ftype.is_id() || i == o.sys.id {
        return None;
    }
    let n = f.name.as_str();
    let required = !f.nillable && !f.defaulted_on_create && f.ftype != FieldType::Boolean;
    if f.external_id || f.unique {
        return Some(Gen::ExternalId);
    }
    let by_name = match n {
        "FirstName" => Some(Gen::First),
        "LastName" => Some(Gen::Last),
        "Company" => Some(Gen::Company),
        "Title" => Some(Gen::Title),
        "Subject" => Some(Gen::Subject),
        "Name" if o.name == "Account" || o.name == "Lead" => Some(Gen::Company),
        "Name" => Some(Gen::FullName),
        _ if n.ends_with("Email") || f.ftype == FieldType::Email => Some(Gen::Email),
        _ if f.ftype == FieldType::Phone && (n == "Phone" || n == "MobilePhone") => {
            Some(Gen::Phone)
        }
        _ if n == "Website" => Some(Gen::Website),
        _ if n.ends_with("Street") => Some(Gen::Street),
        _ if n.ends_with("City") => Some(Gen::City),
        _ if n.ends_with("State") && f.ftype.is_text() => Some(Gen::State),
        _ if n.ends_with("Country") && f.ftype.is_text() => Some(Gen::Country),
        _ if n.ends_with("PostalCode") => Some(Gen::Postal),
        _ => None,
    };
    if by_name.is_some() {
        return by_name;
    }
    if f.is_component() && !required {
        return None;
    }
    match f.ftype {
        FieldType::Picklist
            if !f.picklist_values.is_empty()
                && (required
                    || f.custom
                    || matches!(
                        n,
                        "Industry"
                            | "Type"
                            | "Rating"
                            | "AccountSource"
                            | "StageName"
                            | "Status"
                            | "Priority"
                            | "Origin"
                            | "LeadSource"
                            | "Salutation"
                    )) =>
        {
            Some(Gen::Picklist)
        }
        FieldType::Boolean if f.custom => Some(Gen::Bool),
        FieldType::Int
        | FieldType::Long
        | FieldType::Double
        | FieldType::Currency
        | FieldType::Percent
            if required
                || f.custom
                || matches!(
                    n,
                    "AnnualRevenue" | "NumberOfEmployees" | "Amount" | "Probability"
                ) =>
        {
            Some(Gen::Number)
        }
        FieldType::Date if required || f.custom || n == "CloseDate" => Some(Gen::Date),
        FieldType::DateTime if required || f.custom => Some(Gen::DateTime),
        _ if required && f.ftype.is_text() => Some(Gen::Text),
        _ if f.custom && f.ftype == FieldType::String => Some(Gen::Text),
        _ => None,
    }
}

fn cut(s: String, f: &FieldSchema) -> String {
    if f.length > 0 && s.chars().count() > f.length as usize {
        s.chars().take(f.length as usize).collect()
    } else {
        s
    }
}

impl FieldPlan {
    fn new(o: &ObjectSchema) -> FieldPlan {
        FieldPlan {
            gens: o
                .fields
                .iter()
                .enumerate()
                .filter_map(|(i, f)| classify(o, i, f).map(|g| (i, g)))
                .collect(),
            cities: CITIES
                .iter()
                .map(|c| {
                    let state = if c.1.is_empty() {
                        Value::Null
                    } else {
                        Value::str(c.1)
                    };
                    [Value::str(c.0), state, Value::str(c.2), Value::str(c.3)]
                })
                .collect(),
            first: shared(FIRST),
            last: shared(LAST),
            titles: shared(TITLES),
            picklists: o
                .fields
                .iter()
                .map(|f| {
                    f.picklist_values
                        .iter()
                        .filter(|p| p.active)
                        .map(|p| Value::str(&p.value))
                        .collect()
                })
                .collect(),
        }
    }

    fn fill(
        &self,
        o: &ObjectSchema,
        rng: &mut ChaCha8Rng,
        r: &mut Record,
        n: u64,
        seed: u64,
        now: i64,
    ) {
        let ci = rng.random_range(0..CITIES.len());
        let city = &self.cities[ci];
        let fi = rng.random_range(0..FIRST.len());
        let li = rng.random_range(0..LAST.len());
        let (first, last) = (FIRST[fi], LAST[li]);
        let company = format!(
            "{} {} {}",
            pick(rng, CO_A),
            pick(rng, CO_B),
            pick(rng, CO_C)
        );
        let domain: String = company
            .split_whitespace()
            .take(2)
            .collect::<String>()
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        for &(i, g) in &self.gens {
            let f = &o.fields[i];
            let v = match g {
                Gen::Company => Value::String(cut(company.clone(), f).into()),
                Gen::First => self.first[fi].clone(),
                Gen::Last => self.last[li].clone(),
                Gen::FullName => Value::String(
                    cut(
                        format!("{} {} {}", pick(rng, CO_A), pick(rng, WORDS), n + 1),
                        f,
                    )
                    .into(),
                ),
                Gen::Email => Value::String(
                    format!(
                        "{}.{}{}@{}.example.com",
                        first.to_lowercase(),
                        last.to_lowercase().replace('\'', ""),
                        n,
                        domain
                    )
                    .chars()
                    .map(|c| if c.is_ascii() { c } else { 'x' })
                    .collect::<String>()
                    .into(),
                ),
                Gen::Phone => Value::String(
                    format!(
                        "({:03}) {:03}-{:04}",
                        rng.random_range(200..999),
                        rng.random_range(200..999),
                        rng.random_range(0..10_000)
                    )
                    .into(),
                ),
                Gen::Website => Value::String(format!("https://www.{domain}.example.com").into()),
                Gen::Street => Value::String(
                    format!("{} {}", rng.random_range(1..9999), pick(rng, STREETS)).into(),
                ),
                Gen::City => city[0].clone(),
                Gen::State => city[1].clone(),
                Gen::Country => city[2].clone(),
                Gen::Postal => city[3].clone(),
                Gen::Title => self.titles[rng.random_range(0..self.titles.len())].clone(),
                Gen::Subject => Value::String(
                    format!("{} {} request", pick(rng, CO_A), pick(rng, WORDS)).into(),
                ),
                Gen::Picklist => {
                    let active = &self.picklists[i];
                    if active.is_empty() {
                        Value::Null
                    } else {
                        active[rng.random_range(0..active.len())].clone()
                    }
                }
                Gen::Bool => Value::Bool(rng.random_bool(0.5)),
                Gen::Number => number(rng, f),
                Gen::Date => Value::Date(date_of_ms(
                    now + rng.random_range(-365i64..365) * 86_400_000,
                )),
                Gen::DateTime => Value::DateTime(
                    (now - rng.random_range(0..365i64 * 86_400) * 1000) / 1000 * 1000,
                ),
                Gen::ExternalId => match f.ftype {
                    FieldType::Int | FieldType::Long | FieldType::Double => {
                        Value::Int(n as i64 + 1)
                    }
                    _ => Value::String(cut(format!("S{:x}-{:08}", seed & 0xffff, n + 1), f).into()),
                },
                Gen::Text => Value::String(
                    cut(
                        format!("{} {} {}", pick(rng, CO_A), pick(rng, WORDS), n + 1),
                        f,
                    )
                    .into(),
                ),
            };
            r.set(i, v);
        }
    }
}

fn number(rng: &mut ChaCha8Rng, f: &FieldSchema) -> Value {
    match f.ftype {
        FieldType::Int | FieldType::Long => {
            let max = match f.digits {
                d if d > 0 && d < 9 => 10i64.pow(d) - 1,
                _ => 100_000,
            };
            Value::Int(rng.random_range(1..=max.min(100_000)))
        }
        FieldType::Percent => Value::Double(rng.random_range(0..=100) as f64),
        _ => {
            let int_digits = f.precision.saturating_sub(f.scale);
            let max = if int_digits > 0 && int_digits < 10 {
                10f64.powi(int_digits as i32) - 1.0
            } else {
                10_000_000.0
            };
            let scale = 10f64.powi(f.scale.min(2) as i32);
            let v = (rng.random_range(0.0..max) * scale).round() / scale;
            Value::Double(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::OrgSchema;
    use crate::org::config::Config;

    #[test]
    fn seeding_is_deterministic() {
        let a = Org::new(OrgSchema::demo(), Config::ephemeral());
        let b = Org::new(OrgSchema::demo(), Config::ephemeral());
        let ia = seed_object(&a, "Account", 50, 42).unwrap();
        let ib = seed_object(&b, "Account", 50, 42).unwrap();
        assert_eq!(ia, ib);
        let o = a.schema().object("Account").unwrap().clone();
        let name = o.field_index("Name").unwrap();
        let sa = a.read();
        let sb = b.read();
        let ra = sa.table(0).get(&ia[7]).unwrap();
        let rb = sb.table(0).get(&ib[7]).unwrap();
        assert_eq!(ra.get(name), rb.get(name));
        assert!(ra.get(name).as_str().is_some());
        assert_eq!(sa.table(0).live_count(), 50);
    }
}
