# crm-local stand-in for Bitnami's libpersistence.sh: an application is
# initialized when its volume holds anything but lost+found and .snapshot;
# persisting copies it there; restoring replaces the application's directory
# with a link to the volume (rm -rf, then ln -sfn: /opt/bitnami must be
# writable by the user). The roots are Bitnami's BITNAMI_ROOT_DIR and
# BITNAMI_VOLUME_DIR.
is_app_initialized() { # APP
	[ -n "$(find "${BITNAMI_VOLUME_DIR:-/bitnami}/$1" -mindepth 1 -maxdepth 1 ! -name lost+found ! -name .snapshot 2>/dev/null | head -1)" ]
}
restore_persisted_app() { # APP DATA_TO_PERSIST
	local install_dir=${BITNAMI_ROOT_DIR:-/opt/bitnami}/$1 persist_dir=${BITNAMI_VOLUME_DIR:-/bitnami}/$1
	rm -rf "$install_dir"
	ln -sfn "$persist_dir" "$install_dir"
}
persist_app() { # APP DATA_TO_PERSIST
	local install_dir=${BITNAMI_ROOT_DIR:-/opt/bitnami}/$1 persist_dir=${BITNAMI_VOLUME_DIR:-/bitnami}/$1
	cp -R --preserve=mode,timestamps "$install_dir/." "$persist_dir/"
	restore_persisted_app "$@"
}
