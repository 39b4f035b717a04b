//! UPDATE (RFC 4271 section 4.3) with RFC 7606 revised error handling.

use crate::wire::attr::PathAttributes;
use crate::wire::notification::Notification;
use crate::wire::types::Nlri;

/// What RFC 7606 says to do about an attribute error that does not reset the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rfc7606Action {
    /// Section 2: drop the attribute, keep the routes.
    AttributeDiscard,
    /// Section 2: treat every NLRI in the UPDATE (including MP_REACH) as withdrawn.
    TreatAsWithdraw,
}

/// One attribute error found while decoding an UPDATE, with its RFC 7606 outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttrIssue {
    pub action: Rfc7606Action,
    pub type_code: u8,
    /// The error RFC 4271 would have raised; logged, never sent.
    pub error: UpdateError,
}

/// A decoded UPDATE.
///
/// `withdrawn` and `nlri` are the IPv4 fields of the message body; other families travel in
/// `attributes.mp_reach` / `attributes.mp_unreach`. `issues` lists RFC 7606 outcomes: when any
/// is [`Rfc7606Action::TreatAsWithdraw`], [`Update::treat_as_withdraw`] is true and the
/// receiver must withdraw every prefix the UPDATE announces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Nlri>,
    pub issues: Vec<AttrIssue>,
}

impl Update {
    pub fn treat_as_withdraw(&self) -> bool {
        self.issues.iter().any(|i| i.action == Rfc7606Action::TreatAsWithdraw)
    }
}

/// An UPDATE error that resets the session (RFC 4271 section 6.3 as revised by RFC 7606).
/// `data` is what the RFC asks for in the NOTIFICATION data field (often the erroneous
/// attribute, type, length and value).
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("UPDATE error subcode {subcode}: {reason}")]
pub struct UpdateError {
    pub subcode: u8,
    pub reason: &'static str,
    pub data: bytes::Bytes,
}

impl UpdateError {
    pub fn notification(&self) -> Notification {
        Notification {
            code: crate::wire::error::code::UPDATE_MESSAGE,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

impl Update {
    /// Decode an UPDATE body (the octets after the 19-octet header).
    ///
    /// Interim signature for the message dispatcher; the UPDATE codec replaces the body.
    pub fn decode_body(
        body: &[u8],
        ctx: &crate::wire::SessionContext,
    ) -> Result<Update, UpdateError> {
        let _ = (body, ctx);
        Err(UpdateError {
            subcode: crate::wire::error::update_subcode::MALFORMED_ATTRIBUTE_LIST,
            reason: "UPDATE decoding is not implemented yet",
            data: bytes::Bytes::new(),
        })
    }

    /// Encode an UPDATE body (without the header) into `out`.
    pub fn encode_body(
        &self,
        ctx: &crate::wire::SessionContext,
        out: &mut bytes::BytesMut,
    ) -> Result<(), crate::wire::EncodeError> {
        let _ = (ctx, out);
        Err(crate::wire::EncodeError::Invalid("UPDATE encoding is not implemented yet"))
    }
}
