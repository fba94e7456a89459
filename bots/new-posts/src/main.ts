import { newPosts } from './index';

newPosts.run();
