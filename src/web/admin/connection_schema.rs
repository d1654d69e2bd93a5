//! The bodies of a provider connection and of an added key, as JSON Schema read from each
//! provider's credential spec: one schema per provider (the OpenAPI document gives each provider
//! its own path, see `web::contract`), each field with the exact rule its check applies.

use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder,
    SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::patterns;
use crate::providers::credentials::{FieldKind, KeyKind};
use crate::providers::Provider;

/// One key, by the provider's key kind.
fn key(kind: KeyKind, description: &str) -> ObjectBuilder {
    let o = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description));
    match kind {
        KeyKind::RsaPublicKey => o.format(Some(SchemaFormat::Custom(
            patterns::RSA_PUBLIC_KEY_PEM_FORMAT.into(),
        ))),
        KeyKind::StandardWebhooksSecret => o.pattern(Some(patterns::WHSEC)),
        KeyKind::RawSecret => o.pattern(Some(patterns::RAW_SECRET)),
    }
}

/// An address or network of an allowlist. IPv6 networks (`2001:db8::/32`) are accepted too;
/// no pattern of reasonable size states them exactly, so the schema leaves them out.
fn source_address() -> RefOr<Schema> {
    let format = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    AnyOfBuilder::new()
        .item(format(KnownFormat::Ipv4))
        .item(format(KnownFormat::Ipv6))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(patterns::IPV4_CIDR)),
        )
        .into()
}

fn field(kind: &FieldKind, description: &str) -> RefOr<Schema> {
    let string = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    match kind {
        FieldKind::Text | FieldKind::Secret => string()
            .max_length(Some(1000))
            .pattern(Some(patterns::NOT_BLANK))
            .into(),
        FieldKind::Url { .. } => string()
            .max_length(Some(2048))
            .pattern(Some(patterns::HTTPS_URL))
            .into(),
        FieldKind::Choice(c) => string().enum_values(Some(c.iter().map(|(n, _)| *n))).into(),
        FieldKind::CidrList => ArrayBuilder::new()
            .items(source_address())
            .description(Some(description))
            .into(),
    }
}

/// No other field; `null` stands for an absent field.
fn closed(o: ObjectBuilder, title: String) -> ObjectBuilder {
    o.title(Some(title))
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// A connection's body: the fields of the provider's credential spec
/// (`GET /api/v1/providers` lists them). On update, absent fields keep their value; the key
/// list, when given, replaces the whole key set. Creating a connection needs the key list.
/// `anyOf`, not `oneOf`: the providers' bodies share fields, so a body (`{}` to begin with) may
/// fit several; the `{provider}` in the path says which one applies.
pub struct ConnectionInput;

impl PartialSchema for ConnectionInput {
    fn schema() -> RefOr<Schema> {
        let mut one_of = utoipa::openapi::schema::AnyOfBuilder::new();
        for p in Provider::all() {
            let spec = p.plugin().credentials();
            let keys = ArrayBuilder::new()
                .items(key(spec.keys.kind, spec.keys.label))
                .min_items(Some(1))
                .unique_items(true)
                .description(Some(spec.keys.description));
            let mut o = ObjectBuilder::new().property(spec.keys.field, nullable(keys.into()));
            for f in spec.fields {
                o = o.property(f.name, nullable(field(&f.kind, f.description)));
            }
            one_of = one_of.item(closed(
                o,
                format!("{} connection", p.plugin().display_name()),
            ));
        }
        one_of.into()
    }
}

impl ToSchema for ConnectionInput {}

/// `null` or the schema.
fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(schema)
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// Add one key: an object with the provider's `add_key_field` only (`GET /api/v1/providers`).
pub struct AddKeyInput;

impl PartialSchema for AddKeyInput {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        for p in Provider::all() {
            let keys = &p.plugin().credentials().keys;
            let o = ObjectBuilder::new()
                .property(
                    keys.add_field,
                    key(keys.kind, &format!("A key to add: {}", keys.label)),
                )
                .required(keys.add_field);
            one_of = one_of.item(closed(o, format!("{} key", p.plugin().display_name())));
        }
        one_of.into()
    }
}

impl ToSchema for AddKeyInput {}
