export { EtcdStore, openEtcdStore, DEFAULT_ETCD_PREFIX, ETCD_DEFAULT_MAX_REQUEST_BYTES, type EtcdStoreOptions } from './etcd-store';
