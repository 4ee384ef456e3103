//! `smsfleet keyword add|remove|list`: who owns which incoming keyword,
//! through `smsfleet_query`'s keyword functions.

use crate::cli::KeywordCommand;
use crate::connect;

pub async fn run(command: KeywordCommand) -> anyhow::Result<()> {
    match command {
        KeywordCommand::Add(a) => {
            let pool = connect::store(&a.store, true).await?;
            let owner = smsfleet_accounts::find_account(&pool, &a.user).await?;
            let keyword = smsfleet_query::add_keyword(&pool, &a.keyword, owner.uid).await?;
            println!("keyword={keyword} username={} uid={}", owner.username, owner.uid);
        }
        KeywordCommand::Remove(a) => {
            let pool = connect::store(&a.store, true).await?;
            let keyword = smsfleet_query::remove_keyword(&pool, &a.keyword).await?;
            println!("keyword={keyword} removed");
        }
        KeywordCommand::List(store) => {
            let pool = connect::store(&store, true).await?;
            for (keyword, uid, username) in smsfleet_query::list_keywords(&pool).await? {
                println!("keyword={keyword} username={username} uid={uid}");
            }
        }
    }
    Ok(())
}
