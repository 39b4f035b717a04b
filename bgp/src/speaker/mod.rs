//! The speaker: ties the session FSMs ([`crate::fsm`]), the RIB ([`crate::rib`]), policy,
//! configuration and transport together.
//!
//! * [`SpeakerCore`] is sans-IO: it owns every [`crate::fsm::Peer`] and the
//!   [`crate::rib::Rib`] (single owner, no locks), takes events with `now` (raw bytes read
//!   from a connection, connection up / failed / closed, accepted connections, timer,
//!   operator commands) and emits [`Output`]s (connect, send encoded bytes, close, best-path
//!   changes, state changes). It decodes received bytes with [`crate::wire::BgpCodec`] and
//!   switches the codec to the negotiated contexts exactly when the session is established,
//!   so a message following the OPEN exchange is never decoded with the wrong context.
//!   UPDATEs from the RIB are encoded once per update group (the group key includes the
//!   send context) and the same [`bytes::Bytes`] is sent to every member.
//! * [`Speaker`] (in [`driver`]) is the tokio driver: one task owns the core, one reader and
//!   one writer task per connection, the listener from [`crate::transport::Listener`],
//!   outbound connects with [`crate::transport::connect`], one timer at
//!   [`SpeakerCore::poll_timeout`].
//!
//! Unknown optional transitive attributes are passed on with the Partial bit set (RFC 4271
//! section 5): the core marks them on every received UPDATE before the RIB sees it.

mod core;
pub mod driver;
mod policy;
pub mod status;
mod subscription;

pub use self::core::{
    originate_attrs, BestPathChange, ConnKey, CoreOptions, InterfaceLookup, Output, SpeakerCore,
    SpeakerError,
};
pub use driver::{Speaker, SpeakerOptions};
pub use policy::{compile_policies, peer_policy, validate};
pub use status::SpeakerStatus;
pub use subscription::BestPathSubscription;
