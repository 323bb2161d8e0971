//! Tickets of the multi-step flows (registration, recovery): created by the first step,
//! read by each next step on the same client, removed by the last one. A ticket that is
//! unknown, expired, of another flow or presented by another client is `TICKET_INVALID`.

use crate::app::App;
use crate::audit::Event;
use crate::error::{Code, Error};
use crate::store::records::{Flow, FlowTicket};
use crate::store::{codec, Tree, Tx, TxError};

/// Registration and recovery tickets live 15 minutes.
pub const FLOW_LIFETIME: i64 = 15 * 60;

impl App {
    pub fn flow_hash(&self, ticket: &str) -> String {
        self.keyed.hash("flow-ticket", ticket)
    }

    /// Stores a new flow ticket with the audit event of its start, in one batch; returns
    /// the ticket and its hash. The caller flushes.
    pub async fn new_flow(
        &self,
        flow: Flow,
        client: &str,
        started: &Event,
        now: i64,
    ) -> Result<(String, String), Error> {
        let ticket = crate::crypto::secrets::token();
        let hash = self.flow_hash(&ticket);
        self.save_flow(&hash, client, flow, Some(started), now)
            .await?;
        Ok((ticket, hash))
    }

    /// Stores (or advances) the flow under `hash`; `started` is the audit event of a
    /// flow's first step, written in the same batch.
    pub async fn save_flow(
        &self,
        hash: &str,
        client: &str,
        flow: Flow,
        started: Option<&Event>,
        now: i64,
    ) -> Result<(), Error> {
        let record = FlowTicket {
            client: client.to_string(),
            expires_at: now + FLOW_LIFETIME,
            flow,
        };
        let mut writes = vec![(
            Tree::FlowTickets,
            hash.as_bytes().to_vec(),
            Some(codec::encode(&record)?),
        )];
        if let Some(event) = started {
            writes.push(self.audit.slot(now).await?.write(event)?);
        }
        self.store.apply(writes).await?;
        Ok(())
    }

    /// The live flow of `ticket` for this client: (hash, flow).
    pub async fn load_flow(
        &self,
        ticket: &str,
        client: &str,
        now: i64,
    ) -> Result<(String, Flow), Error> {
        let hash = self.flow_hash(ticket);
        let t: FlowTicket = self
            .store
            .get(Tree::FlowTickets, &hash)
            .await?
            .ok_or_else(|| Error::new(Code::TicketInvalid))?;
        if t.expires_at <= now
            || !crate::crypto::secrets::ct_eq(t.client.as_bytes(), client.as_bytes())
        {
            return Err(Error::new(Code::TicketInvalid));
        }
        Ok((hash, t.flow))
    }

    pub async fn end_flow(&self, hash: &str) -> Result<(), Error> {
        self.store.remove(Tree::FlowTickets, hash).await?;
        Ok(())
    }
}
/// Consumes the flow ticket `hash` in `tx`, with the change the flow's last step makes:
/// a ticket already gone (a replay, or a concurrent finish) is `TICKET_INVALID`.
pub async fn consume_flow(tx: &mut Tx, hash: &str) -> Result<(), TxError<Error>> {
    if tx.get_raw(Tree::FlowTickets, hash).await?.is_none() {
        return Err(TxError::Abort(Error::new(Code::TicketInvalid)));
    }
    tx.remove(Tree::FlowTickets, hash).await?;
    Ok(())
}
