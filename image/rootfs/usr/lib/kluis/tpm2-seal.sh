# tpm2-seal.sh: sourced by seal-signing-key and unseal-signing-key. A secret sealed to the TPM2 the way
# systemd-cryptenroll seals the data partition's key (systemd 257, its LUKS2 token "systemd-tpm2"):
#   - under the Storage Root Key, the persistent primary key at 0x81000001 (systemd-tpm2-setup makes it,
#     with TPMA_OBJECT_NODA: using it is not subject to the TPM's dictionary-attack protection);
#   - a sealed object with fixedtpm|fixedparent|noda, no PIN, a policy of PCR 7 (the Secure Boot state);
#   - unsealed through a policy session salted with the SRK that encrypts the secret on its way out.
# Why not systemd-creds: `systemd-creds encrypt --with-key=tpm2` (257) seals under a transient primary made
# from systemd's legacy template, which lacks TPMA_OBJECT_NODA. Loading the credential authorises that
# primary by its (empty) password: a DA-protected use. A TPM counts every unclean power-off that follows
# such a use as a failed authorisation (TPM2 Part 1, "Non-orderly Shutdown"), and once the count reaches
# the TPM's limit (3 in swtpm) it answers TPM_RC_LOCKOUT: kluis.service failed at CREDENTIALS after the
# third power cut in a row while the data partition (under the SRK) still opened. See docs/format.md.
# The file: TPM2B_PRIVATE then TPM2B_PUBLIC (each with its 2-byte big-endian size), as systemd's blob.
SRK=0x81000001
PCRS=sha256:7
export TPM2TOOLS_TCTI=${TPM2TOOLS_TCTI:-device:/dev/tpmrm0}

# /dev/tpmrm0 (the kernel's resource manager) flushes what the tools loaded when each exits; a TCTI straight to a
# TPM (the tests' swtpm) leaves it loaded, and a TPM holds 3 such objects: flushed before and after each use.
flush_unmanaged() {
  case "$TPM2TOOLS_TCTI" in *tpmrm*) ;; *) tpm2_flushcontext -t >/dev/null 2>&1 || true ;; esac
}

tpm2_present() { [ "$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)" = 2 ]; }

# The SRK, made by systemd's own tool (its template) when it is not there yet (a TPM2 without it).
srk_ready() {
  tpm2_readpublic -c "$SRK" >/dev/null 2>&1 && return 0
  /usr/lib/systemd/systemd-tpm2-setup >/dev/null 2>&1 || true
  tpm2_readpublic -c "$SRK" >/dev/null 2>&1
}

# seal_file SECRET OUT WORKDIR: OUT holds SECRET sealed to this TPM2 (PCR 7 as it is now).
seal_file() {
  local secret=$1 out=$2 w=$3
  flush_unmanaged
  tpm2_createpolicy --policy-pcr -l "$PCRS" -L "$w/policy" >/dev/null
  tpm2_create -C "$SRK" -L "$w/policy" -a "fixedtpm|fixedparent|noda" -i "$secret" \
    -u "$w/pub" -r "$w/priv" >/dev/null
  cat "$w/priv" "$w/pub" > "$out"
  flush_unmanaged
}

# unseal_file IN OUT WORKDIR: OUT holds the secret IN was sealed to; stderr says why not.
unseal_file() {
  local in=$1 out=$2 w=$3 n rc=0
  n=$(head -c 2 "$in" | od -An -tu1 | awk '{print $1 * 256 + $2}')
  [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "not a sealed TPM2 object: $in" >&2; return 1; }
  head -c $((2 + n)) "$in" > "$w/priv"
  tail -c +$((3 + n)) "$in" > "$w/pub"
  flush_unmanaged
  tpm2_load -C "$SRK" -u "$w/pub" -r "$w/priv" -c "$w/obj.ctx" >/dev/null || return 1
  if tpm2_startauthsession --policy-session -c "$SRK" -S "$w/session.ctx" >/dev/null 2>&1; then
    tpm2_policypcr -S "$w/session.ctx" -l "$PCRS" >/dev/null &&
      tpm2_sessionconfig "$w/session.ctx" --enable-encrypt >/dev/null &&
      tpm2_unseal -c "$w/obj.ctx" -p "session:$w/session.ctx" -o "$out" || rc=1
    tpm2_flushcontext "$w/session.ctx" >/dev/null 2>&1 || true
  else
    rc=1
  fi
  tpm2_flushcontext "$w/obj.ctx" >/dev/null 2>&1 || true
  flush_unmanaged
  return $rc
}

# A directory in memory that is never swapped (ramfs, as systemd's credentials), for secrets in transit.
ram_dir() {
  local d=$1
  mkdir -p -m 0700 "$d"
  mountpoint -q "$d" || mount -t ramfs -o mode=0700,nosuid,nodev,noexec ramfs "$d"
  chmod 0700 "$d"
}
