// The counting store is the store spy: kept under its old name for tests that import it.
export { StoreSpy as CountingStore } from './store-spy'
