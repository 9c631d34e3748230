# crm-local stand-in for Bitnami's suitecrm-env.sh: the paths and the data
# to persist (the whole application, line 77).
export SUITECRM_BASE_DIR=/opt/bitnami/suitecrm
export SUITECRM_VOLUME_DIR=/bitnami/suitecrm
export SUITECRM_DATA_TO_PERSIST="${SUITECRM_DATA_TO_PERSIST:-$SUITECRM_BASE_DIR}"
