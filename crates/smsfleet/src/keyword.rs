//! `smsfleet keyword add|remove|list`: who owns which incoming keyword.
//! The query role reads the table for every routed message, so a change
//! applies to the next message without a restart.

use anyhow::{Context, bail};
use smsfleet_domain::keyword::normalize_keyword;

use crate::cli::KeywordCommand;
use crate::connect;

pub async fn run(command: KeywordCommand) -> anyhow::Result<()> {
    match command {
        KeywordCommand::Add(a) => {
            let keyword = parse(&a.keyword)?;
            let pool = connect::store(&a.store, true).await?;
            let owner = smsfleet_store::accounts::by_username(&pool, &a.user.to_ascii_lowercase())
                .await?
                .with_context(|| format!("no account {:?}", a.user))?;
            smsfleet_store::incoming::add_keyword(&pool, &keyword, owner.uid)
                .await
                .with_context(|| format!("keyword {keyword} is taken"))?;
            println!("keyword={keyword} username={} uid={}", owner.username, owner.uid);
        }
        KeywordCommand::Remove(a) => {
            let keyword = parse(&a.keyword)?;
            let pool = connect::store(&a.store, true).await?;
            if !smsfleet_store::incoming::remove_keyword(&pool, &keyword).await? {
                bail!("no keyword {keyword}");
            }
            println!("keyword={keyword} removed");
        }
        KeywordCommand::List(store) => {
            let pool = connect::store(&store, true).await?;
            for (keyword, uid, username) in smsfleet_store::incoming::list_keywords(&pool).await? {
                println!("keyword={keyword} username={username} uid={uid}");
            }
        }
    }
    Ok(())
}

fn parse(raw: &str) -> anyhow::Result<String> {
    normalize_keyword(raw).with_context(|| format!("keyword {raw:?}: one word of at most 50 characters"))
}
