//! The messy cases identity resolution must handle are present and measurable at scale 0.02.

use std::collections::{BTreeMap, BTreeSet};

use cdphub_datagen::identifiers::{JUNK_EMAILS, JUNK_PHONES, normalize_email};

use crate::support::{persons_of, raw, shared_lake, truth};

/// Which of the seven French phone layouts a raw phone uses.
fn phone_format(phone: &str) -> Option<&'static str> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let pairs = |s: &str, sep: char| {
        let parts: Vec<&str> = s.split(sep).collect();
        parts.len() == 5
            && parts[0].len() == 2
            && parts[1..].iter().all(|p| p.len() == 2)
            && parts.iter().all(|p| digits(p))
    };
    let spaced_intl = |rest: &str| {
        let parts: Vec<&str> = rest.split(' ').collect();
        parts.len() == 5
            && parts[0].len() == 1
            && parts[1..].iter().all(|p| p.len() == 2 && digits(p))
    };
    if phone.len() == 10 && digits(phone) {
        Some("0612345678")
    } else if pairs(phone, ' ') {
        Some("06 12 34 56 78")
    } else if pairs(phone, '.') {
        Some("06.12.34.56.78")
    } else if let Some(rest) = phone.strip_prefix("+33 ") {
        spaced_intl(rest).then_some("+33 6 12 34 56 78")
    } else if let Some(rest) = phone.strip_prefix("+33") {
        (rest.len() == 9 && digits(rest)).then_some("+33612345678")
    } else if let Some(rest) = phone.strip_prefix("0033 ") {
        spaced_intl(rest).then_some("0033 6 12 34 56 78")
    } else if let Some(rest) = phone.strip_prefix("0033") {
        (rest.len() == 9 && digits(rest)).then_some("0033612345678")
    } else {
        None
    }
}

#[test]
fn phones_come_in_many_formats() {
    let lake = shared_lake();
    let mut formats = BTreeSet::new();
    for source in ["crm_customers", "orders", "consents"] {
        for phone in raw(lake, source).strs("phone").into_iter().flatten() {
            let format = phone_format(phone);
            assert!(format.is_some(), "unexpected phone layout {phone:?}");
            formats.extend(format);
        }
    }
    assert!(formats.len() >= 4, "{formats:?}");
}

#[test]
fn gmail_addresses_have_dot_and_plus_variants() {
    let lake = shared_lake();
    let mut spellings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut plus_tags = 0;
    let mut case_or_space = 0;
    for source in [
        "crm_customers",
        "web_events",
        "orders",
        "email_events",
        "consents",
    ] {
        for email in raw(lake, source).strs("email").into_iter().flatten() {
            let lowered = email.trim().to_lowercase();
            case_or_space += usize::from(lowered != email);
            if lowered.ends_with("@gmail.com") {
                plus_tags += usize::from(lowered.contains('+'));
                spellings
                    .entry(normalize_email(email))
                    .or_default()
                    .insert(lowered);
            }
        }
    }
    let dot_variants = spellings
        .values()
        .filter(|forms| forms.iter().filter(|f| !f.contains('+')).count() >= 2)
        .count();
    assert!(
        dot_variants >= 3,
        "{dot_variants} gmail addresses spelt with different dots"
    );
    assert!(plus_tags >= 3, "{plus_tags} gmail +tag addresses");
    assert!(
        case_or_space >= 20,
        "{case_or_space} emails with case or whitespace variants"
    );
}

#[test]
fn cashier_placeholders_are_shared_by_many_persons() {
    let lake = shared_lake();
    let orders = raw(lake, "orders");
    let owner = persons_of(&truth(lake), "orders");
    let (ids, emails, phones, channels) = (
        orders.strings("order_id"),
        orders.strs("email"),
        orders.strs("phone"),
        orders.strings("channel"),
    );
    let mut persons_by_placeholder: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in 0..orders.len() {
        for value in [emails[i], phones[i]].into_iter().flatten() {
            if JUNK_EMAILS.contains(&value) || JUNK_PHONES.contains(&value) {
                assert_eq!(channels[i], "store", "placeholders are typed at tills");
                persons_by_placeholder
                    .entry(value)
                    .or_default()
                    .insert(owner[ids[i]].as_str());
            }
        }
    }
    let widely_shared = persons_by_placeholder
        .values()
        .filter(|p| p.len() >= 3)
        .count();
    assert!(widely_shared >= 2, "{persons_by_placeholder:?}");
}

#[test]
fn household_tablet_is_used_by_two_persons_logged_in_and_anonymously() {
    let lake = shared_lake();
    let web = raw(lake, "web_events");
    let owner = persons_of(&truth(lake), "web_events");
    let (ids, devices, customers) = (
        web.strings("event_id"),
        web.strs("device_id"),
        web.strs("customer_id"),
    );
    let mut usage: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>, usize)> = BTreeMap::new();
    for i in 0..web.len() {
        if let Some(device) = devices[i] {
            let entry = usage.entry(device).or_default();
            entry.0.insert(owner[ids[i]].as_str());
            match customers[i] {
                Some(c) => {
                    entry.1.insert(c);
                }
                None => entry.2 += 1,
            }
        }
    }
    let tablets: Vec<_> = usage
        .values()
        .filter(|(persons, _, _)| persons.len() == 2)
        .collect();
    assert!(!tablets.is_empty(), "a household tablet exists");
    assert!(
        tablets
            .iter()
            .any(|(_, customers, anonymous)| customers.len() == 2 && *anonymous > 0),
        "both members log in on some tablet, and it is also used anonymously"
    );
}

#[test]
fn duplicate_crm_entries_share_the_customer_id_with_variant_spellings() {
    let lake = shared_lake();
    let crm = raw(lake, "crm_customers");
    let (records, customers, firsts, lasts) = (
        crm.strings("crm_record_id"),
        crm.strings("customer_id"),
        crm.strs("first_name"),
        crm.strs("last_name"),
    );
    let updated = crm.timestamps("updated_at");
    let mut rows_by_customer: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, customer) in customers.iter().enumerate() {
        rows_by_customer.entry(customer).or_default().push(i);
    }
    let duplicates: Vec<&Vec<usize>> = rows_by_customer
        .values()
        .filter(|rows| rows.len() > 1)
        .collect();
    assert!(
        duplicates.len() >= 15,
        "{} duplicated customers",
        duplicates.len()
    );
    for rows in duplicates {
        assert_eq!(rows.len(), 2);
        let (a, b) = (rows[0], rows[1]);
        assert_ne!(records[a], records[b]);
        let (old, new) = if updated[a] < updated[b] {
            (a, b)
        } else {
            (b, a)
        };
        assert!(updated[new] > updated[old]);
        assert!(
            firsts[a] != firsts[b] || lasts[a] != lasts[b],
            "names differ between duplicates"
        );
    }
    let accounts = rows_by_customer.len();
    assert!(
        (950..1300).contains(&accounts),
        "{accounts} account holders of 2000 persons"
    );
}

#[test]
fn orders_are_known_by_partial_identifiers() {
    let lake = shared_lake();
    let orders = raw(lake, "orders");
    let channel = orders.strings("channel");
    let (customer, email, phone) = (
        orders.strs("customer_id"),
        orders.strs("email"),
        orders.strs("phone"),
    );
    let (loyalty, anonymous, device) = (
        orders.strs("loyalty_id"),
        orders.strs("anonymous_id"),
        orders.strs("device_id"),
    );
    let count = |pred: &dyn Fn(usize) -> bool| (0..orders.len()).filter(|&i| pred(i)).count();
    let loyalty_only = count(&|i| {
        channel[i] == "store"
            && loyalty[i].is_some()
            && customer[i].is_none()
            && email[i].is_none()
            && phone[i].is_none()
    });
    let phone_only = count(&|i| {
        channel[i] == "store"
            && phone[i].is_some_and(|p| !JUNK_PHONES.contains(&p))
            && loyalty[i].is_none()
            && customer[i].is_none()
            && email[i].is_none()
    });
    let guest_email_only = count(&|i| {
        channel[i] == "web"
            && email[i].is_some()
            && anonymous[i].is_some()
            && customer[i].is_none()
            && phone[i].is_none()
            && loyalty[i].is_none()
    });
    let app_with_device =
        count(&|i| channel[i] == "app" && device[i].is_some() && customer[i].is_some());
    assert!(loyalty_only >= 50, "{loyalty_only}");
    assert!(phone_only >= 20, "{phone_only}");
    assert!(guest_email_only >= 20, "{guest_email_only}");
    assert!(app_with_device >= 10, "{app_with_device}");
    let statuses = orders.strings("status");
    let completed =
        statuses.iter().filter(|s| **s == "completed").count() as f64 / statuses.len() as f64;
    assert!((0.82..0.94).contains(&completed), "{completed}");
    assert!(
        (4000..10000).contains(&orders.len()),
        "{} orders for 2000 persons",
        orders.len()
    );
}

#[test]
fn anonymous_cookies_later_log_in() {
    let lake = shared_lake();
    let web = raw(lake, "web_events");
    let (cookies, customers, times, types) = (
        web.strs("anonymous_id"),
        web.strs("customer_id"),
        web.timestamps("occurred_at"),
        web.strings("event_type"),
    );
    // cookie -> (first anonymous event, first identified event)
    let mut seen: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for i in 0..web.len() {
        if let Some(cookie) = cookies[i] {
            let entry = seen.entry(cookie).or_insert((i64::MAX, i64::MAX));
            if customers[i].is_some() {
                entry.1 = entry.1.min(times[i]);
            } else {
                entry.0 = entry.0.min(times[i]);
            }
        }
    }
    let later_logged_in = seen
        .values()
        .filter(|(anonymous, identified)| *identified != i64::MAX && anonymous < identified)
        .count();
    let never_identified = seen
        .values()
        .filter(|(_, identified)| *identified == i64::MAX)
        .count();
    assert!(later_logged_in >= 50, "{later_logged_in}");
    assert!(never_identified >= 50, "{never_identified}");
    assert!(
        types.contains(&"login")
            && types.contains(&"newsletter_signup")
            && types.contains(&"form_submit")
    );
    let events_per_person = web.len() as f64 / 2000.0;
    assert!(
        (15.0..50.0).contains(&events_per_person),
        "{events_per_person} web events per person"
    );
}

#[test]
fn email_clicks_lead_to_tracked_visits() {
    let lake = shared_lake();
    let email = raw(lake, "email_events");
    let web = raw(lake, "web_events");
    let (types, campaigns, links) = (
        email.strings("event_type"),
        email.strings("campaign_id"),
        email.strs("link_url"),
    );
    let sends = types.iter().filter(|t| **t == "send").count() as f64;
    let opens = types.iter().filter(|t| **t == "open").count() as f64;
    let clicks = types.iter().filter(|t| **t == "click").count() as f64;
    assert!(
        (0.15..0.35).contains(&(opens / sends)),
        "open rate {}",
        opens / sends
    );
    assert!(
        (0.015..0.05).contains(&(clicks / sends)),
        "click rate {}",
        clicks / sends
    );
    for i in 0..email.len() {
        assert_eq!(links[i].is_some(), types[i] == "click");
        if let Some(link) = links[i] {
            assert!(link.ends_with(&format!(
                "utm_source=newsletter&utm_medium=email&utm_campaign={}",
                campaigns[i]
            )));
        }
    }
    let landings = web
        .strs("utm_medium")
        .into_iter()
        .filter(|m| *m == Some("email"))
        .count() as f64;
    assert!(
        landings >= clicks * 0.95 && landings <= clicks,
        "{landings} email visits for {clicks} clicks"
    );
}

#[test]
fn paid_visits_match_active_campaigns_and_reported_clicks() {
    let lake = shared_lake();
    let spend = raw(lake, "ad_spend");
    let web = raw(lake, "web_events");
    let (campaigns, dates, clicks) = (
        spend.strings("campaign_id"),
        spend.dates("date"),
        spend.longs("clicks"),
    );
    let reported: BTreeMap<(&str, i32), i64> = (0..spend.len())
        .map(|i| ((campaigns[i], dates[i].expect("date")), clicks[i]))
        .collect();
    assert_eq!(reported.len(), spend.len(), "one row per campaign per day");
    let ids: BTreeSet<&str> = campaigns.iter().copied().collect();
    assert!((35..=50).contains(&ids.len()), "{} ad campaigns", ids.len());

    let (medium, campaign, times) = (
        web.strs("utm_medium"),
        web.strs("utm_campaign"),
        web.timestamps("occurred_at"),
    );
    let mut visits: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for i in 0..web.len() {
        if let (Some("cpc" | "paid_social" | "display" | "affiliate"), Some(c)) =
            (medium[i], campaign[i])
        {
            let day = times[i].div_euclid(86_400_000_000) as i32;
            *visits.entry((c, day)).or_default() += 1;
        }
    }
    assert!(visits.values().sum::<i64>() > 1000);
    for (key, count) in &visits {
        let reported = reported
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} is not an active campaign day"));
        assert!(
            reported >= count,
            "{key:?}: {reported} clicks < {count} visits"
        );
    }
}
