//! `smsfleet phonebook ...`: the operator's way to load and change an
//! account's contacts and groups. The work is in `smsfleet_accounts::phonebook`.

use anyhow::Context;
use smsfleet_accounts::phonebook::{self, MAX_GROUP_MEMBERS};
use smsfleet_store::PgPool;

use crate::cli::{PhonebookCommand, PhonebookGroupCommand};
use crate::connect;

pub async fn execute(command: PhonebookCommand) -> anyhow::Result<()> {
    match command {
        PhonebookCommand::Import(a) => {
            let file = std::fs::File::open(&a.file).with_context(|| format!("cannot open {}", a.file.display()))?;
            // Checked whole before anything is written.
            let contacts = phonebook::parse_csv(std::io::BufReader::new(file))
                .with_context(|| format!("{}: nothing imported", a.file.display()))?;
            let pool = connect::store(&a.store, true).await?;
            let uid = uid_of(&pool, &a.user).await?;
            let bus = connect::bus(&a.bus, "cli").await?;
            let outcome = phonebook::import(&pool, &bus, uid, &contacts).await.with_context(|| {
                format!("{}: nothing imported (groups hold at most {MAX_GROUP_MEMBERS})", a.file.display())
            })?;
            println!(
                "user={} contacts={} groups_created={} groups_published={}",
                a.user,
                outcome.contacts,
                outcome.created_groups.join(";"),
                outcome.touched_gpids.len()
            );
            Ok(())
        }
        PhonebookCommand::Group { command: PhonebookGroupCommand::Add(a) } => {
            let pool = connect::store(&a.store, true).await?;
            let uid = uid_of(&pool, &a.user).await?;
            let bus = connect::bus(&a.bus, "cli").await?;
            let g = phonebook::add_group(&pool, &bus, uid, &a.code, &a.name).await?;
            println!("gpid={} code={} name={}", g.gpid, g.code, g.name);
            Ok(())
        }
        PhonebookCommand::Group { command: PhonebookGroupCommand::Remove(a) } => {
            let pool = connect::store(&a.store, true).await?;
            let uid = uid_of(&pool, &a.user).await?;
            let bus = connect::bus(&a.bus, "cli").await?;
            let g = phonebook::remove_group(&pool, &bus, uid, &a.code).await?;
            println!("removed gpid={} code={}", g.gpid, g.code);
            Ok(())
        }
        PhonebookCommand::List(a) => {
            let pool = connect::store(&a.store, true).await?;
            let uid = uid_of(&pool, &a.user).await?;
            let (groups, contacts) = phonebook::list(&pool, uid).await?;
            for snapshot in groups {
                let g = &snapshot.group;
                let members = snapshot.members.join(";");
                println!("group gpid={} code={} name={} members={members}", g.gpid, g.code, g.name);
            }
            for c in contacts {
                println!("contact pid={} mobile={} name={} email={} tags={}", c.pid, c.mobile, c.name, c.email, c.tags);
            }
            Ok(())
        }
    }
}

async fn uid_of(pool: &PgPool, username: &str) -> anyhow::Result<i64> {
    Ok(smsfleet_accounts::find_account(pool, username).await?.uid)
}
