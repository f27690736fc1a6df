-- Prosody 0.12 configuration for Multiend: one user domain plus the archive component
-- (XEP-0114). Every site-specific value comes from an environment variable (Prosody reads
-- ENV_FOO as os.getenv("FOO")), with defaults that suit a container, so the same file serves
-- deploy/testbed (which exports the variables) and docker-compose (mount it read-only and set
-- the variables in the service's environment).
--
--   MULTIEND_USER_DOMAIN          VirtualHost name                  (localhost)
--   MULTIEND_COMPONENT_DOMAIN     external component name           (archive.localhost)
--   MULTIEND_COMPONENT_SECRET     XEP-0114 handshake secret         (required: no default)
--   MULTIEND_OTHER_DOMAIN         a second VirtualHost, and         (none)
--   MULTIEND_OTHER_COMPONENT_DOMAIN  its component (same secret)    (none; tests: contacts on
--                                                                    another domain)
--   MULTIEND_BIND_ADDRESS         interface for c2s and component   (127.0.0.1)
--   MULTIEND_C2S_PORT             c2s port, STARTTLS required       (5222)
--   MULTIEND_COMPONENT_PORT       component port                    (5347)
--   MULTIEND_PROSODY_DATA         data dir (accounts, rosters)      (/var/lib/prosody)
--   MULTIEND_PROSODY_RUN          pidfile dir                       (same as data dir)
--   MULTIEND_PROSODY_LOG          log file, or "*console"           (*console)
--   MULTIEND_PROSODY_LOG_LEVEL    debug, info, warn, error          (info)
--   MULTIEND_TLS_CERT / _KEY      server certificate and key (SAN: user and component domain)
--                                 (/etc/prosody/certs/multiend.crt / .key)
--   MULTIEND_RUN_AS_ROOT          "1" to allow running as root (test machines only)

local function env(name, default)
	local v = os.getenv(name)
	if v == nil or v == "" then return default end
	return v
end

local user_domain = env("MULTIEND_USER_DOMAIN", "localhost")
local component_domain = env("MULTIEND_COMPONENT_DOMAIN", "archive.localhost")
local bind_address = env("MULTIEND_BIND_ADDRESS", "127.0.0.1")
local data_dir = env("MULTIEND_PROSODY_DATA", "/var/lib/prosody")
local run_dir = env("MULTIEND_PROSODY_RUN", data_dir)
local cert = env("MULTIEND_TLS_CERT", "/etc/prosody/certs/multiend.crt")
local key = env("MULTIEND_TLS_KEY", "/etc/prosody/certs/multiend.key")

run_as_root = env("MULTIEND_RUN_AS_ROOT", "0") == "1"
daemonize = false
pidfile = run_dir .. "/prosody.pid"
data_path = data_dir

log = {
	[env("MULTIEND_PROSODY_LOG_LEVEL", "info")] = env("MULTIEND_PROSODY_LOG", "*console");
}

-- Only what Multiend's clients need. No mod_limits (it throttles clients to a few kB/s),
-- no s2s, no HTTP.
modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "carbons"; "ping"; "time"; "version"; "uptime";
	-- PEP and the account archive: what plain OMEMO apps (Conversations, Dino, Gajim) need;
	-- Multiend devices publish there too, so those apps can reach them.
	"pep"; "mam";
}
modules_disabled = { "s2s"; "s2s_auth_certs" }

-- Networking: loopback (or the container's interface), no s2s, no direct-TLS port.
interfaces = { bind_address }
local_interfaces = { bind_address }
c2s_ports = { tonumber(env("MULTIEND_C2S_PORT", "5222")) }
c2s_interfaces = { bind_address }
c2s_direct_tls_ports = {}
s2s_ports = {}
component_ports = { tonumber(env("MULTIEND_COMPONENT_PORT", "5347")) }
component_interfaces = { bind_address }
http_ports = {}
https_ports = {}

-- Clients: STARTTLS required, SCRAM over accounts stored hashed.
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
storage = "internal"
allow_registration = false

certificates = cert:match("^(.*)/[^/]*$") or "."
ssl = { certificate = cert; key = key; }

VirtualHost (user_domain)
	ssl = { certificate = cert; key = key; }

Component (component_domain)
	component_secret = env("MULTIEND_COMPONENT_SECRET", nil)

-- Tests: a second user domain on the same server (no s2s needed) and its component route.
local other_domain = env("MULTIEND_OTHER_DOMAIN", nil)
local other_component = env("MULTIEND_OTHER_COMPONENT_DOMAIN", nil)
if other_domain then
	VirtualHost (other_domain)
		ssl = { certificate = cert; key = key; }
	if other_component then
		Component (other_component)
			component_secret = env("MULTIEND_COMPONENT_SECRET", nil)
	end
end
