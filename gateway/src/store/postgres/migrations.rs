//! The PostgreSQL schema, as versioned migrations applied at start.
//!
//! Contract: migration N is applied once, in order, inside one transaction that holds an
//! advisory lock, so nodes starting together never apply one twice. A database whose
//! schema is newer than this build knows is refused rather than misread. A migration's
//! text never changes once released; a change is a new migration.

/// (version, SQL). Tree ids in the change trigger: 5 = officers, 7 = sessions
/// (`Tree::id`, fixed by contract and checked by a unit test).
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE kv (
    tree  smallint NOT NULL,
    key   bytea    NOT NULL,
    value bytea    NOT NULL,
    PRIMARY KEY (tree, key)
);
CREATE SEQUENCE ids;
-- Keys of cached trees written by any node, for the other nodes' caches.
CREATE TABLE changes (
    seq  bigserial   PRIMARY KEY,
    tree smallint    NOT NULL,
    key  bytea       NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_at ON changes (at);
CREATE FUNCTION kv_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.tree IN (5, 7) THEN
            INSERT INTO changes (tree, key) VALUES (OLD.tree, OLD.key);
            PERFORM pg_notify('taxgate_changes', '');
        END IF;
    ELSIF NEW.tree = 5 THEN
        INSERT INTO changes (tree, key) VALUES (NEW.tree, NEW.key);
        PERFORM pg_notify('taxgate_changes', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER kv_changed AFTER INSERT OR UPDATE OR DELETE ON kv
    FOR EACH ROW EXECUTE FUNCTION kv_changed();
"#,
)];

/// The advisory lock key held while migrating ("taxgate" in ASCII, as a number).
pub const LOCK: i64 = 0x0074_6178_6761_7465;

#[cfg(test)]
mod tests {
    use crate::store::Tree;

    #[test]
    fn the_trigger_names_the_cached_trees() {
        assert_eq!(Tree::Officers.id(), 5);
        assert_eq!(Tree::Sessions.id(), 7);
        let cached: Vec<Tree> = Tree::ALL.into_iter().filter(|t| t.is_cached()).collect();
        assert_eq!(cached, vec![Tree::Officers, Tree::Sessions]);
    }

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, (v, _)) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
