#!/bin/bash
# Fault campaign against the release binary: `forcesync run` (CometD) against a standalone
# emulator and a private Postgres; the app inserts 3,000 Accounts and updates some while the
# engine is killed -9 every 2 s (KILLS, default 10), then a 503/500 storm with expired sessions
# and dropped streaming (STORM=1), and gap events for 20 records (GAP=1); counts lost, unsent and
# duplicated records and values that differ between Postgres and Salesforce. With BULK=1 (the
# default) the app also inserts 5,000 Accounts at once twice (steps sent by Bulk API jobs and
# settled in two halves at once), the second time with two kills 0.7 s and 1.2 s after it.
# Run as root from the repository root after
# `cargo build --release -p forcesync -p sf-emulator` (FORCESYNC_BIN_DIR, default target/release).
# Work files under /tmp/campaign.
set -u
B=${FORCESYNC_BIN_DIR:-target/release}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
D=/tmp/campaign; mkdir -p $D
rm -rf $D/pg; mkdir -p $D/pg; chown postgres $D/pg
runuser -u postgres -- $PGBIN/initdb -D $D/pg/data -U postgres -A trust --no-sync >/dev/null
runuser -u postgres -- $PGBIN/pg_ctl -D $D/pg/data -l $D/pg/log -w -o "-p 55432 -k $D/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres
E=http://127.0.0.1:58484
$B/sf-emulator --listen 127.0.0.1:58484 --describe "$(dirname "$0")/../mappings/describe" --seed demo > $D/emu.log 2>&1 &
EMU=$!
sleep 2
export SF_LOGIN_URL=$E SF_CLIENT_ID=forcesync SF_CLIENT_SECRET=forcesync SF_USERNAME=admin@example.com SF_PASSWORD=forcesync
export FORCESYNC_STREAMING_TRANSPORT=cometd RUST_LOG=${RUST_LOG:-warn}
cd "$(dirname "$0")/.."
$B/forcesync migrate > $D/migrate.log 2>&1 || { echo migrate failed; cat $D/migrate.log; }
start_run() { $B/forcesync run --listen 127.0.0.1:59187 >> $D/run.log 2>&1 & RUN=$!; }
start_run
sleep 5
psql() { command psql -qAt "$DATABASE_URL" -c "$1"; }
# The app writes 3,000 Accounts (30 batches of 100) and updates; forcesync is killed -9 every 2 s.
( for b in $(seq 0 29); do
    psql "INSERT INTO salesforce.account (name, phone) SELECT 'fault-' || ($b*100 + g), 'p' FROM generate_series(1,100) g" >/dev/null
    psql "UPDATE salesforce.account SET phone = 'u$b' WHERE name LIKE 'fault-%' AND sfid IS NOT NULL AND random() < 0.05" >/dev/null
    [ "${BULK:-1}" = 1 ] && [ $b = 10 ] && psql "INSERT INTO salesforce.account (name) SELECT 'fault-' || (10000 + g) FROM generate_series(0,4999) g" >/dev/null
    sleep 0.4
  done ) &
WRITER=$!
for k in $(seq 1 ${KILLS:-10}); do sleep 2; kill -9 $RUN 2>/dev/null; wait $RUN 2>/dev/null; start_run; done
wait $WRITER
# 5,000 Accounts at once, and forcesync killed while it claims, sends or settles them.
if [ "${BULK:-1}" = 1 ]; then
  psql "INSERT INTO salesforce.account (name) SELECT 'fault-' || (20000 + g) FROM generate_series(0,4999) g" >/dev/null
  for pause in 0.7 0.5; do sleep $pause; kill -9 $RUN 2>/dev/null; wait $RUN 2>/dev/null; start_run; done
fi
# A storm: 10% 503, 5% 500, sessions expired, streaming dropped, for 15 s while the app writes 500 more.
[ "${STORM:-1}" = 1 ] && curl -s -X POST $E/__emulator/faults -H 'Content-Type: application/json' -d '{"share_503":0.1,"share_500":0.05,"seed":7,"expire_sessions":true,"drop_streaming":true}' >/dev/null
psql "INSERT INTO salesforce.account (name) SELECT 'fault-' || (3000 + g) FROM generate_series(0,499) g" >/dev/null
# Gap events (GAP=1, the default) during the storm: Salesforce's header-only events for records
# changed outside a transaction, for 20 of the synced records; the engine must read them again.
if [ "${GAP:-1}" = 1 ]; then
  ids=$(psql "SELECT string_agg('\"' || sfid || '\"', ',') FROM (SELECT sfid FROM salesforce.account WHERE name LIKE 'fault-%' AND sfid IS NOT NULL ORDER BY id LIMIT 20) s")
  [ -n "$ids" ] && curl -s -X POST $E/__emulator/faults/cdc/gap -H 'Content-Type: application/json' -d "{\"object\":\"Account\",\"changeType\":\"GAP_UPDATE\",\"recordIds\":[$ids]}" | sed "s/^/gap event published: /"; echo
fi
sleep 15
curl -s -X DELETE $E/__emulator/faults >/dev/null
# Drain: until no NEW/PENDING entry is left (at most 120 s).
for i in $(seq 1 120); do
  left=$(psql "SELECT count(*) FROM salesforce._trigger_log WHERE state IN ('NEW','PENDING')")
  [ "$left" = "0" ] && break; sleep 1
done
sleep 3
TOKEN=$(curl -s -X POST $E/services/oauth2/token -d grant_type=password -d client_id=forcesync -d client_secret=forcesync -d username=admin@example.com -d password=forcesync | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
q() { python3 - "$E" "$TOKEN" "$1" <<'PY'
import sys, json, urllib.request, urllib.parse
e, token, soql = sys.argv[1:4]
url = e + "/services/data/v60.0/query?" + urllib.parse.urlencode({"q": soql})
out = {"records": [], "done": True}
while url:
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    d = json.load(urllib.request.urlopen(req))
    out["totalSize"] = d["totalSize"]
    out["records"] += d.get("records", [])
    url = e + d["nextRecordsUrl"] if not d["done"] else None
print(json.dumps(out))
PY
}
echo "trigger log left NEW/PENDING: $left"
echo "rows in Postgres named fault-%: $(psql "SELECT count(*) FROM salesforce.account WHERE name LIKE 'fault-%'")"
echo "distinct sfids in Postgres: $(psql "SELECT count(DISTINCT sfid) FROM salesforce.account WHERE name LIKE 'fault-%'")"
echo "of them without sfid: $(psql "SELECT count(*) FROM salesforce.account WHERE name LIKE 'fault-%' AND sfid IS NULL")"
echo "failed archive entries: $(psql "SELECT count(*) FROM salesforce._trigger_log_archive WHERE state = 'FAILED'")"
echo "Salesforce records named fault-%: $(q "SELECT COUNT() FROM Account WHERE Name LIKE 'fault-%'" | python3 -c 'import sys,json; print(json.load(sys.stdin)["totalSize"])')"
echo "distinct names among them: $(q "SELECT Name FROM Account WHERE Name LIKE 'fault-%'" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(len({r["Name"] for r in d["records"]}), "of", len(d["records"]), "records returned; done:", d["done"])')"
echo "phones differing between Postgres and Salesforce: $(q "SELECT Id, Phone FROM Account WHERE Name LIKE 'fault-%'" | python3 -c '
import sys,json,subprocess
d=json.load(sys.stdin); sf={r["Id"]:r["Phone"] for r in d["records"]}
out=subprocess.run(["psql","-qAt","'$DATABASE_URL'","-c","SELECT sfid, coalesce(phone,\x27\x27) FROM salesforce.account WHERE name LIKE \x27fault-%\x27 AND sfid IS NOT NULL"],capture_output=True,text=True).stdout
pg=dict(l.split("|",1) for l in out.splitlines() if l)
diff=[(k,v,sf.get(k)) for k,v in pg.items() if (sf.get(k) or "")!=v]
open("/tmp/campaign/diff.txt","w").write("\n".join(f"{k} pg={v!r} sf={s!r}" for k,v,s in diff))
print(len(diff), "of", len(pg))')"
echo "restarts: $(( ${KILLS:-10} + ( ${BULK:-1} == 1 ? 2 : 0 ) )) kill -9; run.log panics: $(grep -c panicked $D/run.log)"
echo "conflicts recorded: $(psql "SELECT count(*) FROM salesforce._forcesync_conflicts")"
sleep 20
echo "phones differing 20 s later (after a poll/verify window): $(q "SELECT Id, Phone FROM Account WHERE Name LIKE 'fault-%'" | python3 -c '
import sys,json,subprocess
d=json.load(sys.stdin); sf={r["Id"]:r["Phone"] for r in d["records"]}
out=subprocess.run(["psql","-qAt","'$DATABASE_URL'","-c","SELECT sfid, coalesce(phone,\x27\x27) FROM salesforce.account WHERE name LIKE \x27fault-%\x27 AND sfid IS NOT NULL"],capture_output=True,text=True).stdout
pg=dict(l.split("|",1) for l in out.splitlines() if l)
print(sum(1 for k,v in pg.items() if (sf.get(k) or "")!=v))')"
kill $RUN; wait $RUN 2>/dev/null
$B/forcesync verify > $D/verify.log 2>&1; echo "forcesync verify exit $?: $(tail -3 $D/verify.log | tr '\n' ' ')"
kill $EMU
runuser -u postgres -- $PGBIN/pg_ctl -D $D/pg/data -m immediate stop >/dev/null
