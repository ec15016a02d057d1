import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Relative asset URLs: the built page is served as static files by the gateway.
export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
  server: {
    // `pnpm dev` talks to a locally running gateway.
    proxy: {
      '/function': 'http://localhost:8080',
    },
  },
});
