//! BGP-4 wire format: decode with `nom`, encode into [`bytes::BytesMut`]. No I/O, no tokio.
//!
//! Every decode and encode takes the negotiated [`SessionContext`] (4-octet AS, add-path per
//! AFI/SAFI, extended message length). Decoding a malformed message yields a [`DecodeError`]
//! whose [`DecodeError::notification`] is the exact RFC 4271 section 6 NOTIFICATION to send;
//! UPDATE attribute errors that RFC 7606 does not escalate to a session reset are carried as
//! data in the decoded [`Update`] instead.

pub mod attr;
mod attr_codec;
pub mod codec;
pub mod context;
pub mod error;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod types;
pub mod update;

pub use attr::{
    Aggregator, AsPath, AsSegment, AsSegmentType, Community, ExtCommunity, LargeCommunity,
    MpNextHop, MpReach, MpUnreach, Origin, PathAttributes, RawAttribute,
};
pub use codec::{BgpCodec, CodecError};
pub use context::{common_families, SessionContext};
pub use error::{DecodeError, EncodeError};
pub use message::{frame_len, HeaderError, Message, MessageType, HEADER_LEN, MARKER};
pub use notification::{Notification, ShutdownMessageError};
pub use open::{
    AddPathDirection, AddPathEntry, Capability, GracefulRestartCap, Open, OpenError, OptParam,
};
pub use route_refresh::{RouteRefresh, RouteRefreshSubtype};
pub use types::{Afi, Family, Nlri, Safi};
pub use update::{AttrIssue, Rfc7606Action, Update};
